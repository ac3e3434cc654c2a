"""A real gateway: uvicorn on a free loopback port, over a temp store with its own fresh secrets.

One server per test session (start-up is the slow part); tests mint their own keys, so they do
not depend on each other's state. The socket is bound here (port 0) and handed to uvicorn, so
there is no race for the port between choosing and binding it.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from _live_helpers import LiveGateway

from cleanroom.crypto import new_secret
from cleanroom.gateway import GatewayConfig, Limits, create_app
from cleanroom.settings import GatewaySecrets

STARTUP_TIMEOUT_S = 15.0


def _config(root: Path, repo: Path) -> GatewayConfig:
    keys_file = root / "gateway.keys.json"
    GatewaySecrets(pepper=new_secret(), db_key=new_secret()).write(keys_file)
    shutil.copytree(repo / "partners", root / "partners")
    (root / "policies").mkdir()
    limits = Limits(max_upload_bytes=256 * 1024, max_json_bytes=16 * 1024)
    return GatewayConfig(store=root / "store", partners=root / "partners", policies=root / "policies", keys_file=keys_file, limits=limits)


def _wait_healthy(url: str, server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during start-up")
        if server.started:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"gateway at {url} not healthy after {STARTUP_TIMEOUT_S}s")


@pytest.fixture(scope="session")
def live_gateway(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[LiveGateway]:
    config = _config(tmp_path_factory.mktemp("gateway"), repo)
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", server_header=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn-test")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, thread)
        yield LiveGateway(url=url, config=config, keys=app.state.services.keys)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture()
def mint(live_gateway: LiveGateway) -> Callable[[str, str], str]:
    return live_gateway.mint
