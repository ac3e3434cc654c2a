"""The audit hash chain: edits, drops, reorders and truncation are detected at the right line."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cleanroom.audit import GENESIS, AuditLog
from cleanroom.cli import audit as audit_cli
from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.errors import AuditError


@pytest.fixture()
def log(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(6):
        log.append("query" if i % 2 else "upload", f"user{i}", {"i": i, "epsilon": "0.1"})
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def rewrite(log: AuditLog, new_lines: list[str]) -> None:
    log.path.write_text("".join(new_lines))


def test_intact_chain(log: AuditLog) -> None:
    report = log.verify()
    assert (report.ok, report.entries) == (True, 6)
    assert report.head == json.loads(lines(log)[-1])["hash"]
    assert json.loads(lines(log)[0])["prev"] == GENESIS


def test_edited_entry_is_found_at_its_line(log: AuditLog) -> None:
    ls = lines(log)
    ls[2] = ls[2].replace('"i": 2', '"i": 9')
    rewrite(log, ls)
    report = log.verify()
    assert (report.ok, report.first_bad_line, report.entries) == (False, 3, 2)
    assert "edited" in (report.problem or "")


def test_edit_with_a_recomputed_hash_breaks_the_next_link(log: AuditLog) -> None:
    ls = lines(log)
    entry = json.loads(ls[2])
    entry["details"]["epsilon"] = "0.0001"
    entry["hash"] = sha256_hex(canonical_json({k: v for k, v in entry.items() if k != "hash"}))
    ls[2] = json.dumps(entry, sort_keys=True) + "\n"
    rewrite(log, ls)
    report = log.verify()
    assert (report.ok, report.first_bad_line) == (False, 4)
    assert "does not follow" in (report.problem or "")


def test_deleted_entry_is_found(log: AuditLog) -> None:
    ls = lines(log)
    del ls[3]
    rewrite(log, ls)
    report = log.verify()
    assert (report.ok, report.first_bad_line) == (False, 4)
    assert "dropped or reordered" in (report.problem or "")


def test_reordered_entries_are_found(log: AuditLog) -> None:
    ls = lines(log)
    ls[1], ls[2] = ls[2], ls[1]
    rewrite(log, ls)
    assert (log.verify().ok, log.verify().first_bad_line) == (False, 2)


def test_truncation_needs_the_expected_head(log: AuditLog) -> None:
    head = log.verify().head
    rewrite(log, lines(log)[:-1])
    assert log.verify().ok  # a clean cut is invisible without an outside anchor ...
    report = log.verify(expected_head=head)
    assert (report.ok, report.first_bad_line) == (False, 6)  # ... and found with one
    assert "cut off" in (report.problem or "")


def test_garbage_line_and_require_intact(log: AuditLog) -> None:
    ls = lines(log)
    ls.insert(2, "not json\n")
    rewrite(log, ls)
    assert log.verify().first_bad_line == 3
    with pytest.raises(AuditError) as err:
        log.require_intact()
    assert err.value.code == "audit.chain_broken" and err.value.details["line"] == 3
    with pytest.raises(AuditError):
        list(log.entries())


def test_entries_larger_than_the_tail_block_keep_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("query", "a", {"sql": "x" * 200_000})
    log.append("query", "a", {})
    log.append("query", "a", {"sql": "y" * 70_000})
    assert log.append("query", "a", {}).seq == 3
    assert log.verify().ok and log.verify().entries == 4


def test_a_torn_last_line_is_never_extended(log: AuditLog) -> None:
    with log.path.open("a") as fh:
        fh.write('{"seq": 6, "at": "2026')  # a writer died mid-line
    with pytest.raises(AuditError):
        log.append("query", "a", {})
    assert lines(log)[-1].endswith('"2026')


def _append_many(path: str, worker: int, n: int) -> None:
    log = AuditLog(Path(path))
    for i in range(n):
        log.append("query", f"worker{worker}", {"i": i})


def test_concurrent_appends_from_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    log = AuditLog(path)
    report = log.verify()
    assert (report.ok, report.entries) == (True, 100)
    assert [e.seq for e in log.entries()] == list(range(100))


# --- CLI ---------------------------------------------------------------------------------------------


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    audit_cli.register(app)
    return app


def test_cli_verify_ok_and_broken(app: typer.Typer, log: AuditLog) -> None:
    store = str(log.path.parent)
    ok = CliRunner().invoke(app, ["audit", "verify", "--store", store, "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["entries"] == 6
    ls = lines(log)
    del ls[1]
    rewrite(log, ls)
    broken = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["audit", "verify", "--store", store])
    assert broken.exit_code == 1
    assert f"{log.path}:2" in broken.output and "dropped or reordered" in broken.output
    data = json.loads(CliRunner().invoke(app, ["audit", "verify", "--store", store, "--json"]).output)
    assert (data["ok"], data["first_bad_line"]) == (False, 2)


def test_cli_verify_expected_head(app: typer.Typer, log: AuditLog) -> None:
    head = log.verify().head
    rewrite(log, lines(log)[:-2])
    result = CliRunner().invoke(app, ["audit", "verify", "--store", str(log.path.parent), "--expected-head", head])
    assert result.exit_code == 1 and "cut off" in result.output


def test_cli_show_filters_by_event(app: typer.Typer, log: AuditLog) -> None:
    result = CliRunner().invoke(app, ["audit", "show", "--store", str(log.path.parent), "--event", "query", "--json"])
    assert result.exit_code == 0
    entries = json.loads(result.output)
    assert [e["seq"] for e in entries] == [1, 3, 5] and {e["event"] for e in entries} == {"query"}
    last = json.loads(CliRunner().invoke(app, ["audit", "show", "--store", str(log.path.parent), "--last", "2", "--json"]).output)
    assert [e["seq"] for e in last] == [4, 5]
    human = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["audit", "show", "--store", str(log.path.parent)])
    assert human.exit_code == 0 and "6 entries" in human.output


def test_cli_show_reports_a_corrupt_line(app: typer.Typer, log: AuditLog) -> None:
    rewrite(log, [*lines(log)[:2], "garbage\n"])
    result = CliRunner().invoke(app, ["audit", "show", "--store", str(log.path.parent), "--json"])
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "audit.chain_broken"


def test_cli_verify_without_a_log(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--store", str(tmp_path), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["entries"] == 0


def test_incremental_verification_walks_only_new_lines_and_catches_a_cut_or_rewritten_tail(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.verify_incremental().ok
    for i in range(5):
        log.append("query", "a", {"i": i})
    first = log.verify_incremental()
    assert first.ok and first.entries == 5 and first.head == log.verify().head
    for i in range(5, 8):
        log.append("query", "a", {"i": i})
    assert log.verify_incremental().entries == 8
    assert [e.seq for e in log.entries_after(5)] == [6, 7]
    assert [e.seq for e in log.entries_after(None)] == list(range(8))
    assert [e.seq for e in log.entries_after(7)] == []
    log.append("query", "a", {"i": 8})
    assert [e.seq for e in log.entries_after(6)] == [7, 8]  # past the checkpoint too
    raw = (tmp_path / "audit.jsonl").read_bytes()
    lines = raw.splitlines(keepends=True)
    # the tail cut off (two entries removed): caught without a full walk
    (tmp_path / "audit.jsonl").write_bytes(b"".join(lines[:-2]))
    cut = log.verify_incremental()
    assert not cut.ok and "removed" in (cut.problem or "")
    # rewritten: same length, the last verified line edited
    (tmp_path / "audit.jsonl").write_bytes(raw.replace(b'"i": 7', b'"i": 9'))
    edited = log.verify_incremental()
    assert not edited.ok and "rewritten" in (edited.problem or "")


def test_incremental_verification_catches_an_edited_new_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("query", "a", {"i": 0})
    assert log.verify_incremental().ok
    log.append("query", "a", {"i": 1})
    path = tmp_path / "audit.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"i": 1', b'"i": 2'))
    report = log.verify_incremental()
    assert not report.ok and report.first_bad_line == 2 and "edited" in (report.problem or "")
