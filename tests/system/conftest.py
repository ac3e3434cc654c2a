"""A real gateway: uvicorn on a free loopback port, over a temp store with its own fresh secrets.

One server per test session (start-up is the slow part); tests mint their own keys, so they do
not depend on each other's state. ``serve(config)`` starts the same kind of server over any
config: the release tests run one per module over a collaboration built by ``collab.py``.
The socket is bound here (port 0) and handed to uvicorn, so there is no race for the port
between choosing and binding it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _live_helpers import LiveGateway
from collab import serve, synth_raw

from cleanroom.crypto import new_secret
from cleanroom.gateway import GatewayConfig, Limits
from cleanroom.settings import GatewaySecrets


def _config(root: Path, repo: Path) -> GatewayConfig:
    keys_file = root / "gateway.keys.json"
    GatewaySecrets(pepper=new_secret(), db_key=new_secret()).write(keys_file)
    shutil.copytree(repo / "partners", root / "partners")
    (root / "policies").mkdir()
    limits = Limits(max_upload_bytes=256 * 1024, max_json_bytes=16 * 1024)
    return GatewayConfig(store=root / "store", partners=root / "partners", policies=root / "policies", keys_file=keys_file, limits=limits)


@pytest.fixture(scope="session")
def live_gateway(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[LiveGateway]:
    with serve(_config(tmp_path_factory.mktemp("gateway"), repo)) as gateway:
        yield gateway


@pytest.fixture(scope="session")
def synth_4k(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Path:
    """Synthetic raw partner files for 4,000 customers (seed 7), generated once per session and
    copied into each collaboration that a test module builds (``collab.build_collab``)."""
    return synth_raw(tmp_path_factory.mktemp("synth") / "raw", repo, customers=4000, seed=7)


@pytest.fixture()
def mint(live_gateway: LiveGateway) -> Callable[[str, str], str]:
    return live_gateway.mint
