"""Nothing lost under storage faults, on a real gateway over loopback.

- A full disk (the store on a small tmpfs, filled until ENOSPC) and a read-only store (a read-only
  bind mount over the store directory, made after the gateway opened its database: Linux refuses
  to remount read-only a mount with files open for writing) answer queries and uploads with the
  documented 503 (``store.full`` / ``store.unavailable``, ``Retry-After``), a bad key still with
  401, and ``/healthz`` is ``degraded`` (503); once space or write access returns the gateway
  recovers by itself, without a restart.
- A damaged block met by a charged query is audited as ``store.integrity`` and every further
  query is refused with 503 ``store.integrity`` before anything is charged, until a restart.
- ``cleanroom serve`` on a read-only store, a garbage ledger, a damaged database file or without
  its key file prints one line and exits 2, never a traceback.
- Upload staging: what a crash left in ``incoming/`` is removed at start, and a gateway killed
  with SIGKILL in the middle of a large upload leaves no data in ``incoming/``.

Mounting needs root (CAP_SYS_ADMIN): where the machine does not allow it, those tests skip and
say so; nothing else skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import bearer, check_problem
from collab import COLLABORATION, Collab, build_collab, free_port, serve

from cleanroom.errors import StoreError
from cleanroom.gateway import ApiKeys, GatewayConfig, Limits

NORTH = "northside-dealers"
BAD_KEY = "crk_" + "A" * 43  # well-formed, unknown: needs the key table and audits the failure
LEDGER = "budget.sqlite"


# --- helpers ------------------------------------------------------------------------------------------


def _config(collab: Collab, store: Path) -> GatewayConfig:
    return GatewayConfig(store=store, partners=collab.partners_dir, policies=collab.policies, keys_file=collab.keys_file, limits=Limits())


def _query(url: str, key: str, models: list[str]) -> httpx.Response:
    body = {"collaboration": COLLABORATION, "template": "funnel", "params": {"filters": {"model": models}}, "epsilon": 0.25}
    return httpx.post(f"{url}/v1/queries", json=body, headers=bearer(key), timeout=120)


def _upload(url: str, key: str, arrow: Path, manifest: Path, dataset: str) -> httpx.Response:
    files = {"arrow": (arrow.name, arrow.read_bytes(), "application/vnd.apache.arrow.file"),
             "manifest": (manifest.name, manifest.read_bytes(), "application/json")}
    return httpx.post(f"{url}/v1/datasets/{dataset}/uploads", files=files, headers=bearer(key), timeout=120)


def _health(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{url}/healthz", timeout=10)
    return response.status_code, response.json()


def _recovers(url: str, within_s: float = 5.0) -> None:
    """/healthz turns ok again by itself (its probe write runs at most once a second)."""
    deadline = time.monotonic() + within_s
    while _health(url)[0] != 200:
        assert time.monotonic() < deadline, _health(url)
        time.sleep(0.2)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _umount(path: Path) -> None:
    if _run("mountpoint", "-q", str(path)).returncode == 0 and _run("umount", str(path)).returncode != 0:
        _run("umount", "-l", str(path))


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip (with the reason) where this process may not mount: CI containers often may not."""
    probe = tmp_path_factory.mktemp("mount-probe")
    result = _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode}): needs root with CAP_SYS_ADMIN")
    _umount(probe)


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    built = build_collab(tmp_path_factory.mktemp("faults") / "collab", repo, raw_source=synth_4k)
    with serve(built.config()) as live:  # one charge, so the anchor and ledger have history
        assert _query(live.url, live.mint(NORTH, "analyst"), ["aster"]).status_code == 200
    return built


@pytest.fixture()
def store_copy(collab: Collab, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(collab.store, copy)
    return copy


def _fill(directory: Path) -> Path:
    """Write a filler file until the file system says ENOSPC."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\1" * chunk):
                    pass
    finally:
        os.close(fd)
    return filler


# --- a full disk --------------------------------------------------------------------------------------


@pytest.fixture()
def tmpfs_store(can_mount: None, collab: Collab, tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    size_mb = int(sum(f.stat().st_size for f in collab.store.rglob("*") if f.is_file()) / 2**20) + 24
    result = _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mnt))
    assert result.returncode == 0, result.stderr
    try:
        store = mnt / "store"
        shutil.copytree(collab.store, store)
        yield store
    finally:
        _umount(mnt)


def test_a_full_disk_is_store_full_and_recovers_by_itself(collab: Collab, tmpfs_store: Path) -> None:
    with serve(_config(collab, tmpfs_store)) as live:
        analyst, uploader = live.mint(NORTH, "analyst"), live.mint(NORTH, "uploader")
        assert _health(live.url) == (200, {"status": "ok", "version": _health(live.url)[1]["version"]})
        filler = _fill(tmpfs_store.parent)

        response = httpx.get(f"{live.url}/v1/budget", params={"collaboration": COLLABORATION}, headers=bearer(BAD_KEY))
        check_problem(response, "auth.invalid")  # the failed authentication's audit entry could not be written

        response = _query(live.url, analyst, ["borealis"])
        body = check_problem(response, "store.full")
        assert response.headers["retry-after"] == "30"
        assert "Traceback" not in response.text and str(tmpfs_store) not in response.text and "details" not in body

        pair = next(iter(collab.uploads(NORTH).values()))
        response = _upload(live.url, uploader, pair.arrow, pair.manifest, pair.arrow.stem)
        check_problem(response, "store.full")
        assert list((tmpfs_store / "incoming").iterdir()) == []

        status, health = _health(live.url)
        assert status == 503 and health["status"] == "degraded" and health["reason"] == "store.full"

        filler.unlink()  # the operator frees space: no restart
        _recovers(live.url)
        response = _query(live.url, analyst, ["borealis"])
        assert response.status_code == 200, response.text
        assert _health(live.url)[1]["status"] == "ok"


# --- a read-only store --------------------------------------------------------------------------------


def test_a_read_only_store_is_store_unavailable_and_recovers_by_itself(can_mount: None, collab: Collab, store_copy: Path) -> None:
    with contextlib.ExitStack() as stack:
        stack.callback(_umount, store_copy)  # after the server stopped (LIFO)
        live = stack.enter_context(serve(_config(collab, store_copy)))
        analyst = live.mint(NORTH, "analyst")
        assert _query(live.url, analyst, ["cirrus"]).status_code == 200
        assert _run("mount", "--bind", str(store_copy), str(store_copy)).returncode == 0
        result = _run("mount", "-o", "remount,bind,ro", str(store_copy))
        assert result.returncode == 0, result.stderr
        with pytest.raises(OSError):
            (store_copy / "probe").write_bytes(b"x")

        check_problem(httpx.get(f"{live.url}/v1/budget", params={"collaboration": COLLABORATION}, headers=bearer(BAD_KEY)), "auth.invalid")
        response = _query(live.url, analyst, ["dune"])
        check_problem(response, "store.unavailable")
        assert response.headers["retry-after"] == "30"
        status, health = _health(live.url)
        assert status == 503 and health == {"status": "degraded", "version": health["version"], "reason": "store.unavailable"}

        assert _run("mount", "-o", "remount,bind,rw", str(store_copy)).returncode == 0
        _recovers(live.url)  # the health probe's write succeeds: recovered
        response = _query(live.url, analyst, ["dune"])
        assert response.status_code == 200, response.text


# --- a damaged block ----------------------------------------------------------------------------------


def _damage(store: Path, offset: int) -> None:
    with (store / "cleanroom.duckdb").open("r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xa5" * 512)


def _charges(store: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(store / LEDGER)) as con:
        return int(con.execute("SELECT count(*) FROM charges").fetchone()[0])


def test_a_damaged_block_is_audited_and_stops_queries_until_restart(collab: Collab, tmp_path: Path) -> None:
    """Blocks are overwritten one at a time in fresh copies until the funnel query reads one (DuckDB: AES tag differs)."""
    block = 256 * 1024
    size = (collab.store / "cleanroom.duckdb").stat().st_size
    tried = []
    for start in range(3 * 4096 + block, size, block):
        store = tmp_path / f"store-{start}"
        shutil.copytree(collab.store, store)
        _damage(store, start + block // 2)
        try:
            live_cm = serve(_config(collab, store))
            live = live_cm.__enter__()
        except StoreError as exc:  # the start check read the damaged block (the catalog): refused with one error
            assert exc.code == "store.integrity" and "cleanroom.duckdb" in exc.message
            tried.append("refused at start")
            continue
        try:
            analyst = live.mint(NORTH, "analyst")
            before = _charges(store)
            response = _query(live.url, analyst, ["ember"])
            if response.status_code == 200:
                tried.append("not read")
                continue
            check_problem(response, "store.integrity")
            assert "retry-after" not in response.headers
            assert _charges(store) == before + 1  # charged before execution: the epsilon is spent...
            entries = [line for line in (store / "audit.jsonl").read_text().splitlines() if '"event": "query"' in line]
            assert '"outcome": "store.integrity"' in entries[-1]  # ...and audited with what happened
            status, health = _health(live.url)
            assert status == 503 and health["reason"] == "store.integrity"
            check_problem(_query(live.url, analyst, ["fjord"]), "store.integrity")  # sticky, refused BEFORE any charge
            assert _charges(store) == before + 1
            check_problem(httpx.get(f"{live.url}/v1/budget", params={"collaboration": COLLABORATION}, headers=bearer(BAD_KEY)),
                          "auth.invalid")
            return
        finally:
            live_cm.__exit__(None, None, None)
            shutil.rmtree(store, ignore_errors=True)
    pytest.skip(f"no overwritten block was read by the funnel query ({tried}); see tests/unit/store/test_faults.py")


# --- start-up problems: one line, exit 2 ----------------------------------------------------------------


def _serve_once(collab: Collab, store: Path, keys_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cleanroom.cli.main", "serve", "--port", str(free_port()), "--store", str(store),
           "--partners", str(collab.partners_dir), "--policies", str(collab.policies), "--keys-file", str(keys_file or collab.keys_file)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _one_line(result: subprocess.CompletedProcess[str], code: str, *names: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error [{code}]"), lines[0]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def test_start_refuses_a_garbage_ledger(collab: Collab, store_copy: Path) -> None:
    for name in (LEDGER + "-wal", LEDGER + "-shm"):
        (store_copy / name).unlink(missing_ok=True)
    (store_copy / LEDGER).write_bytes(os.urandom(64 * 1024))
    _one_line(_serve_once(collab, store_copy), "store.integrity", str(store_copy / LEDGER))


def test_start_refuses_a_ledger_with_another_schema(collab: Collab, store_copy: Path) -> None:
    import sqlite3

    for name in (LEDGER, LEDGER + "-wal", LEDGER + "-shm"):
        (store_copy / name).unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(store_copy / LEDGER)) as con:
        con.execute("CREATE TABLE charges (id INTEGER PRIMARY KEY, epsilon REAL)")
        con.commit()
    _one_line(_serve_once(collab, store_copy), "store.integrity", str(store_copy / LEDGER))


def test_start_refuses_a_damaged_database_file(collab: Collab, store_copy: Path) -> None:
    db = store_copy / "cleanroom.duckdb"
    db.write_bytes(db.read_bytes()[:4096] + os.urandom(db.stat().st_size - 4096))
    line = _one_line(_serve_once(collab, store_copy), "store.integrity", str(db))
    assert "restore" in line


def test_start_refuses_a_missing_key_file(collab: Collab, store_copy: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gateway.keys"
    line = _one_line(_serve_once(collab, store_copy, missing), "config.missing_key")
    assert str(missing) in line


def test_start_refuses_a_read_only_store(can_mount: None, collab: Collab, store_copy: Path) -> None:
    assert _run("mount", "--bind", str(store_copy), str(store_copy)).returncode == 0
    try:
        assert _run("mount", "-o", "remount,bind,ro", str(store_copy)).returncode == 0
        _one_line(_serve_once(collab, store_copy), "store.unavailable", str(store_copy))
    finally:
        _umount(store_copy)


# --- upload staging -----------------------------------------------------------------------------------


def test_staging_left_by_a_crash_is_removed_at_start(collab: Collab, store_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    incoming = store_copy / "incoming"
    left = incoming / "tmpcrashed"
    left.mkdir(parents=True)
    (left / "sales.arrow").write_bytes(b"\x01" * 5000)  # what the old named staging left behind
    (left / "sales.manifest.json").symlink_to("/proc/self/fd/99")  # what the anonymous staging can leave: no data
    (incoming / "stray").write_bytes(b"\x02" * 100)
    os.chmod(incoming, 0o755)
    with caplog.at_level("WARNING", logger="cleanroom.gateway"), serve(_config(collab, store_copy)):
        assert list(incoming.iterdir()) == []
        assert incoming.stat().st_mode & 0o777 == 0o700
    warnings = [r.getMessage() for r in caplog.records if "staging" in r.getMessage()]
    assert len(warnings) == 1 and "2 staging entries (5100 bytes" in warnings[0], warnings


def _data_files(directory: Path) -> list[tuple[str, int]]:
    """Regular files (not symlinks) under ``directory`` with their sizes."""
    return [(str(p), p.stat().st_size) for p in directory.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.parametrize("rounds", [1, pytest.param(20, marks=pytest.mark.slow, id="20-rounds")])
def test_kill_9_in_the_middle_of_a_large_upload_leaves_no_data(collab: Collab, store_copy: Path, tmp_path: Path, rounds: int) -> None:
    pair = collab.reprepare(NORTH, "kill9")[next(iter(collab.uploads(NORTH)))]  # a fresh nonce: not a replay
    big = tmp_path / pair.arrow.name
    with big.open("wb") as fh:  # the signed manifest's SHA-256 will not match: ingest hashes 160 MB first
        for _ in range(160):
            fh.write(os.urandom(1 << 20))
    uploader = ApiKeys(store_copy, collab.partners()).create_key(NORTH, "uploader", "kill9", actor="test")[1]
    seen = sum(_kill_during_upload(collab, store_copy, tmp_path, uploader, big, pair.manifest, pair.arrow.stem) for _ in range(rounds))
    with serve(_config(collab, store_copy)):  # restart
        assert list((store_copy / "incoming").iterdir()) == []
    if not seen:
        pytest.skip("the upload never reached the staging step before the kill (nothing to observe)")


def _kill_during_upload(collab: Collab, store_copy: Path, tmp_path: Path, uploader: str, big: Path, manifest: Path, dataset: str) -> bool:
    """One round: start ``cleanroom serve``, send the big upload, SIGKILL the server while it stages; True if staging was seen."""
    port = free_port()
    cmd = [sys.executable, "-m", "cleanroom.cli.main", "serve", "--port", str(port), "--store", str(store_copy),
           "--partners", str(collab.partners_dir), "--policies", str(collab.policies), "--keys-file", str(collab.keys_file)]
    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    incoming = store_copy / "incoming"
    seen_staging = False
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.05)
        assert _data_files(incoming) == []  # whatever an earlier kill left was swept at start
        sender = threading.Thread(target=_quiet_upload, args=(url, uploader, big, manifest, dataset), daemon=True)
        sender.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sender.is_alive():
            if incoming.exists() and any(incoming.iterdir()):
                seen_staging = True
                time.sleep(0.05)  # let the copy into staging run a little
                break
            time.sleep(0.002)
        proc.kill()
        proc.wait(timeout=15)
        sender.join(timeout=30)
        assert _data_files(incoming) == []  # killed mid-upload: no byte of the upload has a name on disk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return seen_staging


def _quiet_upload(url: str, key: str, arrow: Path, manifest: Path, dataset: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        _upload(url, key, arrow, manifest, dataset)
