"""A lost, truncated, rolled-back or swapped ledger (or a cut audit log) stops the real gateway.

A collaboration is built and queried through a real server twice (a restart over an intact store
is accepted). Then each test copies the store, damages the copy the way an accident or an
operator would, and starts a gateway over it: ``Services`` (what ``create_app`` builds at start)
raises ``store.integrity`` naming the file, and ``cleanroom serve`` prints one line and exits 2.
A torn last audit line is the exception: it is cut off at start and queries work again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import bearer
from collab import COLLABORATION, Collab, build_collab, free_port, serve

from cleanroom.audit import AuditLog
from cleanroom.errors import StoreError
from cleanroom.gateway import GatewayConfig, Limits
from cleanroom.gateway.services import Services

NORTH = "northside-dealers"
LEDGER_FILES = ("budget.sqlite", "budget.sqlite-wal", "budget.sqlite-shm")


def _ask(url: str, key: str, models: list[str]) -> dict[str, Any]:
    body = {"collaboration": COLLABORATION, "template": "funnel", "params": {"filters": {"model": models}}, "epsilon": 0.25}
    response = httpx.post(f"{url}/v1/queries", json=body, headers=bearer(key), timeout=120)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _config(collab: Collab, store: Path) -> GatewayConfig:
    return GatewayConfig(store=store, partners=collab.partners_dir, policies=collab.policies, keys_file=collab.keys_file, limits=Limits())


def _query_on(collab: Collab, store: Path, models: list[str]) -> dict[str, Any]:
    config = _config(collab, store)
    with serve(config) as live:
        return _ask(live.url, live.mint(NORTH, "analyst"), models)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> tuple[Collab, Path, Path]:
    """(collab after 3 charged queries and a restart, a copy of its store after the 1st, a diverged branch of that copy)."""
    root = tmp_path_factory.mktemp("integrity")
    collab = build_collab(root / "collab", repo, raw_source=synth_4k)
    _query_on(collab, collab.store, ["aster"])
    old = root / "old-store"
    shutil.copytree(collab.store, old)
    _query_on(collab, collab.store, ["borealis"])  # a restart over an intact store is accepted
    _query_on(collab, collab.store, ["cirrus"])
    branch = root / "branch-store"  # the same history up to the 1st query, then other questions
    shutil.copytree(old, branch)
    for models in (["dune"], ["ember"], ["fjord"]):
        _query_on(collab, branch, models)
    return collab, old, branch


@pytest.fixture()
def copy(built: tuple[Collab, Path, Path], tmp_path: Path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(built[0].store, store)
    return store


def _refused(collab: Collab, store: Path) -> StoreError:
    with pytest.raises(StoreError) as err:
        Services(_config(collab, store)).close()
    assert err.value.code == "store.integrity" and err.value.status == 503
    return err.value


def _replace_ledger(store: Path, source: Path) -> None:
    for name in LEDGER_FILES:
        (store / name).unlink(missing_ok=True)
        if (source / name).exists():
            shutil.copy(source / name, store / name)


def _delete(store: Path, _: tuple[Collab, Path, Path]) -> None:
    for name in LEDGER_FILES:
        (store / name).unlink(missing_ok=True)


def _truncate(store: Path, _: tuple[Collab, Path, Path]) -> None:
    for name in LEDGER_FILES:
        if (store / name).exists():
            (store / name).write_bytes(b"")


def _roll_back(store: Path, built: tuple[Collab, Path, Path]) -> None:
    _replace_ledger(store, built[1])


def _swap(store: Path, built: tuple[Collab, Path, Path]) -> None:
    _replace_ledger(store, built[2])


DAMAGE: dict[str, Callable[[Path, tuple[Collab, Path, Path]], None]] = {
    "deleted": _delete, "truncated": _truncate, "rolled-back": _roll_back, "swapped": _swap,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_ledger_stops_the_gateway(built: tuple[Collab, Path, Path], copy: Path, damage: str) -> None:
    collab = built[0]
    assert len(collab.ledger().charges(COLLABORATION)) == 3
    DAMAGE[damage](copy, built)
    err = _refused(collab, copy)
    assert str(copy / "budget.sqlite") in err.message, err.message
    assert "restore" in err.message or "put in its place" in err.message


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    """Another collaboration (its own keys and store), queried 4 times: more charges than ours."""
    other = build_collab(tmp_path_factory.mktemp("integrity-other") / "collab", repo, raw_source=synth_4k)
    for models in (["aster"], ["borealis"], ["cirrus"], ["dune"]):
        _query_on(other, other.store, models)
    return other


def test_another_collaborations_ledger_stops_the_gateway(built: tuple[Collab, Path, Path], copy: Path, other: Collab) -> None:
    _replace_ledger(copy, other.store)
    assert len(other.ledger().charges(COLLABORATION)) == 4
    err = _refused(built[0], copy)
    assert str(copy / "budget.sqlite") in err.message


def test_another_stores_anchor_does_not_verify(built: tuple[Collab, Path, Path], copy: Path, other: Collab) -> None:
    for name in (*LEDGER_FILES, "audit.jsonl", "anchor.json"):
        (copy / name).unlink(missing_ok=True)
        if (other.store / name).exists():
            shutil.copy(other.store / name, copy / name)
    err = _refused(built[0], copy)
    assert "anchor.json" in err.message and "MAC does not verify" in err.message


def test_a_removed_last_audit_entry_stops_the_gateway(built: tuple[Collab, Path, Path], copy: Path) -> None:
    path = copy / "audit.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    assert AuditLog(path).verify().ok  # the chain alone cannot see a cut tail
    err = _refused(built[0], copy)
    assert "audit.jsonl is behind the anchor" in err.message and "the last 1 entries were removed" in err.message


def test_a_torn_audit_line_is_repaired_and_queries_work(built: tuple[Collab, Path, Path], copy: Path) -> None:
    collab = built[0]
    with (copy / "audit.jsonl").open("ab") as fh:
        fh.write(b'{"seq": 99, "at": "2026-')  # the process died mid-append
    answer = _query_on(collab, copy, ["aster", "cirrus"])
    assert answer["epsilon_charged"] == 0.25
    assert AuditLog(copy / "audit.jsonl").verify().ok


def test_cleanroom_serve_prints_one_line_and_exits(built: tuple[Collab, Path, Path], copy: Path) -> None:
    collab = built[0]
    _delete(copy, built)
    args = ["--store", str(copy), "--partners", str(collab.partners_dir), "--policies", str(collab.policies), "--keys-file", str(collab.keys_file)]
    done = subprocess.run([sys.executable, "-m", "cleanroom.cli.main", "serve", "--port", str(free_port()), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "store.integrity" in line]
    assert lines and "budget.sqlite" in done.stderr, done.stderr
