"""The integrity anchor over real files: MAC, the ahead/behind rule, torn audit lines, adoption."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from cleanroom.audit import AuditLog
from cleanroom.budget import Epsilon, Ledger
from cleanroom.crypto import new_secret
from cleanroom.errors import StoreError
from cleanroom.integrity import ANCHOR_FILE, Anchor, guard_store
from cleanroom.settings import GatewaySecrets

E = Epsilon.parse
MONTH = "2026-03"


class Gateway:
    """The ledger, log and anchor of one store, wired the way ``Services`` wires them."""

    def __init__(self, store: Path, secrets: GatewaySecrets) -> None:
        self.store, self.secrets = store, secrets
        self.ledger = Ledger(store / "budget.sqlite")
        self.audit = AuditLog(store / "audit.jsonl")
        self.anchor = guard_store(store, self.ledger, self.audit, secrets)

    def query(self, qid: str, eps: str = "0.1", collaboration: str = "aurora-2026") -> None:
        """Charge, store a result, audit: what the release path does for one query."""
        self.ledger.charge(collaboration=collaboration, partner="aurora-motors", month=MONTH, epsilon=E(eps), partner_budget=E("5"),
                           collaboration_cap=E("10"), report_reserve=Epsilon.zero(), purpose="query", query_id=qid, actor="analyst")
        self.ledger.store_result(f"key-{collaboration}-{qid}", qid, "aurora-motors", {"rows": [[1]]})
        self.audit.append("query", "aurora-motors/k1", {"query_id": qid, "collaboration": collaboration, "epsilon": eps, "outcome": "released"})


@pytest.fixture()
def secrets() -> GatewaySecrets:
    return GatewaySecrets(pepper=new_secret(), db_key=new_secret())


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def start(store: Path, secrets: GatewaySecrets) -> Gateway:
    return Gateway(store, secrets)


def refused(store: Path, secrets: GatewaySecrets) -> StoreError:
    with pytest.raises(StoreError) as err:
        start(store, secrets)
    assert err.value.code == "store.integrity" and err.value.status == 503
    return err.value


def anchor_data(store: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((store / ANCHOR_FILE).read_text())


def test_first_start_writes_a_0600_anchor_that_follows_every_commit(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    path = store / ANCHOR_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert anchor_data(store)["ledger"]["charges"] == 0
    gw.query("q1", "0.25")
    gw.query("q2", "0.5")
    data = anchor_data(store)
    assert (data["ledger"]["charges"], data["ledger"]["micro"], data["ledger"]["results"]) == (2, 750_000, 2)
    assert data["audit"]["entries"] == 2 and data["audit"]["head"] == gw.audit.verify().head
    start(store, secrets)  # a restart over an intact store is accepted


def test_a_store_with_only_cli_audit_entries_and_no_charge_starts(store: Path, secrets: GatewaySecrets) -> None:
    AuditLog(store / "audit.jsonl").append("policy.sign", "compliance:aurora-motors", {"collaboration": "aurora-2026"})
    gw = start(store, secrets)
    assert anchor_data(store)["audit"]["entries"] == 1
    gw.query("q1")


def test_an_edited_anchor_or_other_keys_are_refused(store: Path, secrets: GatewaySecrets) -> None:
    start(store, secrets).query("q1")
    err = refused(store, GatewaySecrets(pepper=new_secret(), db_key=new_secret()))
    assert "MAC does not verify" in err.message and ANCHOR_FILE in err.message
    data = anchor_data(store)
    data["ledger"]["charges"] = 0
    (store / ANCHOR_FILE).write_text(json.dumps(data))
    assert "MAC does not verify" in refused(store, secrets).message


@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_a_lost_ledger_is_refused(store: Path, secrets: GatewaySecrets, how: str) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    gw.query("q2")
    for suffix in ("", "-wal", "-shm"):
        p = store / f"budget.sqlite{suffix}"
        if p.exists():
            p.unlink() if how == "delete" else p.write_bytes(b"")
    err = refused(store, secrets)
    assert "budget.sqlite" in err.message and "q1" in err.message  # the audit log names a charge the ledger lacks


def test_a_lost_ledger_is_refused_by_the_anchor_alone(store: Path, secrets: GatewaySecrets) -> None:
    """Charges the audit log never saw (a crash before the audit append) are still anchored."""
    gw = start(store, secrets)
    gw.ledger.charge(collaboration="c", partner="p", month=MONTH, epsilon=E("0.3"), partner_budget=E("1"), collaboration_cap=E("1"),
                     report_reserve=Epsilon.zero(), purpose="query", query_id="q9", actor="a")
    (store / "budget.sqlite").unlink()
    err = refused(store, secrets)
    assert "behind the anchor" in err.message and "holds 0 charges" in err.message and "records 1 charges (0.3 epsilon" in err.message


def test_a_rolled_back_ledger_is_refused(store: Path, secrets: GatewaySecrets, tmp_path: Path) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    backup = tmp_path / "backup.sqlite"
    shutil.copy(store / "budget.sqlite", backup)  # WAL mode: copy what a naive file copy gets
    for name in ("budget.sqlite-wal", "budget.sqlite-shm"):
        if (store / name).exists():
            shutil.copy(store / name, tmp_path / name.replace("budget.sqlite", "backup.sqlite"))
    gw.query("q2")
    gw.ledger.charge(collaboration="c", partner="p", month=MONTH, epsilon=E("0.3"), partner_budget=E("1"), collaboration_cap=E("1"),
                     report_reserve=Epsilon.zero(), purpose="query", query_id="q3", actor="a")
    for name in ("budget.sqlite", "budget.sqlite-wal", "budget.sqlite-shm"):
        (store / name).unlink(missing_ok=True)
        src = tmp_path / name.replace("budget.sqlite", "backup.sqlite")
        if src.exists():
            shutil.copy(src, store / name)
    assert "budget.sqlite" in refused(store, secrets).message


def test_a_swapped_ledger_with_the_same_totals_is_refused(store: Path, secrets: GatewaySecrets, tmp_path: Path) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    other = start(tmp_path / "other", secrets)  # another store, same keys, the same charges but other rows
    other.query("q1")
    other.query("q2")
    gw.ledger.charge(collaboration="aurora-2026", partner="aurora-motors", month=MONTH, epsilon=E("0.1"), partner_budget=E("5"),
                     collaboration_cap=E("10"), report_reserve=Epsilon.zero(), purpose="query", query_id="q2", actor="analyst")
    for name in ("budget.sqlite", "budget.sqlite-wal", "budget.sqlite-shm"):
        (store / name).unlink(missing_ok=True)
        if (tmp_path / "other" / name).exists():
            shutil.copy(tmp_path / "other" / name, store / name)
    err = refused(store, secrets)
    assert "is not the anchored ledger" in err.message


def test_a_ledger_ahead_of_the_anchor_is_accepted_and_re_anchored(store: Path, secrets: GatewaySecrets) -> None:
    """A crash between the ledger commit and the anchor update must not brick the gateway."""
    gw = start(store, secrets)
    gw.query("q1")
    gw.ledger.on_commit = None  # the process dies before refreshing the anchor
    gw.ledger.charge(collaboration="c", partner="p", month=MONTH, epsilon=E("0.3"), partner_budget=E("1"), collaboration_cap=E("1"),
                     report_reserve=Epsilon.zero(), purpose="query", query_id="q2", actor="a")
    assert anchor_data(store)["ledger"]["charges"] == 1
    start(store, secrets)
    assert anchor_data(store)["ledger"]["charges"] == 2


def test_an_audit_log_ahead_is_accepted_behind_is_refused(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    AuditLog(store / "audit.jsonl").append("upload", "cli", {"partner": "aurora-motors"})  # a CLI writer: no anchor hook
    start(store, secrets)
    assert anchor_data(store)["audit"]["entries"] == 2
    lines = (store / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (store / "audit.jsonl").write_bytes(b"".join(lines[:-1]))  # the last entry deleted: the chain alone cannot tell
    assert AuditLog(store / "audit.jsonl").verify().ok
    err = refused(store, secrets)
    assert "audit.jsonl is behind the anchor" in err.message and "the last 1 entries were removed" in err.message


def test_verify_against_the_anchor_reports_a_removed_last_entry(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    gw.query("q2")
    anchored = gw.anchor.read()
    assert anchored is not None
    mark = (anchored.audit.entries, anchored.audit.head)
    assert gw.audit.verify(anchored=mark).ok
    lines = (store / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (store / "audit.jsonl").write_bytes(b"".join(lines[:-1]))
    report = gw.audit.verify(anchored=mark)
    assert not report.ok and "the last 1 entries were removed" in (report.problem or "")


def test_a_replaced_audit_log_is_refused(store: Path, secrets: GatewaySecrets, tmp_path: Path) -> None:
    gw = start(store, secrets)
    gw.audit.append("upload", "cli", {"partner": "x"})
    other = AuditLog(tmp_path / "other.jsonl")
    other.append("upload", "cli", {"partner": "y"})
    other.append("upload", "cli", {"partner": "y"})
    shutil.copy(other.path, store / "audit.jsonl")
    assert "is not the anchored log" in refused(store, secrets).message


def test_a_torn_last_audit_line_is_cut_off_at_start(store: Path, secrets: GatewaySecrets, caplog: pytest.LogCaptureFixture) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    with (store / "audit.jsonl").open("ab") as fh:
        fh.write(b'{"seq": 1, "at": "2026')  # a writer died mid-line
    with caplog.at_level("WARNING"):
        gw = start(store, secrets)
    assert "torn last line" in caplog.text
    assert (store / "audit.jsonl").read_bytes().endswith(b"\n")
    gw.query("q2")  # appends extend the chain again: nothing charged is left unreleasable
    assert gw.audit.verify().ok and gw.audit.verify().entries == 2


def test_an_edited_audit_entry_is_refused(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    path = store / "audit.jsonl"
    path.write_text(path.read_text().replace('"0.1"', '"0.0"'))
    assert "must verify" in refused(store, secrets).message


def test_a_missing_anchor_over_charges_is_refused_until_adopted(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    (store / ANCHOR_FILE).unlink()
    err = refused(store, secrets)
    assert "anchor.json is missing" in err.message and "cleanroom audit anchor --adopt" in err.message
    ledger, audit = Ledger(store / "budget.sqlite"), AuditLog(store / "audit.jsonl")
    Anchor(store, ledger, audit, secrets).adopt()
    start(store, secrets).query("q2")


def test_a_ledger_from_before_anchors_is_anchored_when_the_audit_log_agrees(store: Path, secrets: GatewaySecrets,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A store from an older version (or charged by a tool) has charges but no anchor and no marker."""
    ledger = Ledger(store / "budget.sqlite")
    ledger.charge(collaboration="c", partner="p", month=MONTH, epsilon=E("0.3"), partner_budget=E("1"), collaboration_cap=E("1"),
                  report_reserve=Epsilon.zero(), purpose="query", query_id="q1", actor="a")
    AuditLog(store / "audit.jsonl").append("query", "p/k", {"query_id": "q1", "outcome": "released"})
    assert ledger.anchored_since() is None
    with caplog.at_level("WARNING"):
        start(store, secrets)
    assert "never anchored" in caplog.text and anchor_data(store)["ledger"]["charges"] == 1
    assert ledger.anchored_since() is not None
    (store / ANCHOR_FILE).unlink()
    assert "the anchor was deleted" in refused(store, secrets).message  # from now on the marker demands an anchor


def test_an_unanchored_ledger_the_audit_log_contradicts_is_refused(store: Path, secrets: GatewaySecrets) -> None:
    """Anchor AND ledger deleted: the audit log still names the charges the fresh ledger lacks."""
    gw = start(store, secrets)
    gw.query("q1")
    for name in (ANCHOR_FILE, "budget.sqlite", "budget.sqlite-wal", "budget.sqlite-shm"):
        (store / name).unlink(missing_ok=True)
    err = refused(store, secrets)
    assert "lacks 1 of the 1 charged queries" in err.message and "q1" in err.message


def test_a_runtime_anchor_failure_does_not_fail_the_commit(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    (store / ANCHOR_FILE).write_text("{}")  # broken while running
    gw.query("q1")  # the charge and the audit entry stand; the next start reports the anchor
    assert gw.ledger.charge_rows() and gw.audit.verify().entries == 1
    assert "not an integrity anchor" in refused(store, secrets).message


# --- the CLI: audit verify against the anchor, audit anchor --adopt ----------------------------------


def _cli(args: list[str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    import typer
    from typer.testing import CliRunner

    from cleanroom.cli import audit as audit_cli

    app = typer.Typer()
    audit_cli.register(app)
    return CliRunner().invoke(app, args, env={"CLEANROOM_KEYS_FILE": "", "CLEANROOM_PEPPER": "", "CLEANROOM_DB_KEY": "", **(env or {})})


def test_cli_verify_detects_a_removed_last_entry_with_and_without_keys(store: Path, secrets: GatewaySecrets, tmp_path: Path) -> None:
    keys = tmp_path / "gateway.keys.json"
    secrets.write(keys)
    gw = start(store, secrets)
    gw.query("q1")
    gw.query("q2")
    ok = _cli(["audit", "verify", "--store", str(store), "--keys-file", str(keys)])
    assert ok.exit_code == 0 and "MAC verified" in ok.output
    path = store / "audit.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    for extra in (["--keys-file", str(keys)], []):
        bad = _cli(["audit", "verify", "--store", str(store), *extra])
        assert bad.exit_code == 1 and "last 1 entries were removed" in bad.output, bad.output
    assert "not checked (no gateway keys)" in _cli(["audit", "verify", "--store", str(store)]).output
    data = json.loads(_cli(["audit", "verify", "--store", str(store), "--json"]).output)
    assert data["ok"] is False and data["anchor"]["entries"] == 2


def test_cli_adopt_lets_a_store_without_an_anchor_start(store: Path, secrets: GatewaySecrets, tmp_path: Path) -> None:
    keys = tmp_path / "gateway.keys.json"
    secrets.write(keys)
    start(store, secrets).query("q1")
    (store / ANCHOR_FILE).unlink()
    refused(store, secrets)
    shown = _cli(["audit", "anchor", "--store", str(store), "--keys-file", str(keys)])
    assert shown.exit_code == 0 and "no anchor" in shown.output
    adopted = _cli(["audit", "anchor", "--adopt", "--store", str(store), "--keys-file", str(keys)])
    assert adopted.exit_code == 0 and "adopted" in adopted.output and "1 charges" in adopted.output, adopted.output
    start(store, secrets)
    other = GatewaySecrets(pepper=new_secret(), db_key=new_secret())
    other.write(tmp_path / "other.keys.json")
    wrong = _cli(["audit", "anchor", "--store", str(store), "--keys-file", str(tmp_path / "other.keys.json")])
    assert wrong.exit_code == 2 and "store.integrity" in wrong.output


# --- a crash between a charge and its audit entry, or between an activation and its entry -------


def _query_entries(audit: AuditLog) -> dict[str, dict]:  # type: ignore[type-arg]
    return {e.details["query_id"]: e.details for e in audit.entries() if e.event == "query"}


def test_a_charge_a_crash_left_unaudited_is_audited_at_start_once(store: Path, secrets: GatewaySecrets) -> None:
    gw = start(store, secrets)
    gw.query("q1")
    # killed after the charge (and, for q3, after storing the result) but before the audit append
    gw.ledger.charge(collaboration="aurora-2026", partner="aurora-motors", month=MONTH, epsilon=E("0.3"), partner_budget=E("5"),
                     collaboration_cap=E("10"), report_reserve=Epsilon.zero(), purpose="query", query_id="q2", actor="aurora-motors/k1")
    gw.ledger.charge(collaboration="aurora-2026", partner="aurora-motors", month=MONTH, epsilon=E("0.2"), partner_budget=E("5"),
                     collaboration_cap=E("10"), report_reserve=Epsilon.zero(), purpose="query", query_id="q3", actor="aurora-motors/k1")
    gw.ledger.store_result("key-q3", "q3", "aurora-motors", {"rows": [[7]]})
    assert set(_query_entries(gw.audit)) == {"q1"}
    again = start(store, secrets)
    entries = _query_entries(again.audit)
    assert set(entries) == {"q1", "q2", "q3"}
    assert (entries["q2"]["outcome"], entries["q2"]["epsilon"], entries["q2"]["recovered"]) == ("interrupted", "0.3", True)
    assert entries["q2"]["result_digest"] is None
    assert entries["q3"]["outcome"] == "released" and len(entries["q3"]["result_digest"]) == 64
    assert anchor_data(store)["audit"]["entries"] == 3 and again.audit.verify().ok
    count = sum(1 for _ in again.audit.entries())
    start(store, secrets)  # nothing more to recover: no duplicate entries
    assert sum(1 for _ in again.audit.entries()) == count
    assert sum(row[5] for row in again.ledger.charge_rows()) == 600_000  # nothing refunded, nothing charged again


def test_a_torn_query_entry_is_rewritten_from_its_charge(store: Path, secrets: GatewaySecrets) -> None:
    """The torn last line is cut off; the charge it described is then audited from the ledger."""
    gw = start(store, secrets)
    gw.query("q1")
    gw.audit.on_commit = None  # the append below is torn by the crash: the anchor never counted it
    gw.query("q2")
    raw = (store / "audit.jsonl").read_bytes()
    last = raw.rstrip(b"\n").rsplit(b"\n", 1)[1]
    (store / "audit.jsonl").write_bytes(raw[: len(raw) - len(last) - 1] + last[: len(last) // 2])
    again = start(store, secrets)
    entries = _query_entries(again.audit)
    assert entries["q2"]["recovered"] is True and entries["q2"]["outcome"] == "released"
    assert again.audit.verify().ok and len(again.ledger.charge_rows()) == 2


def test_an_activation_a_crash_left_unaudited_is_audited_at_start(store: Path, secrets: GatewaySecrets) -> None:
    from datetime import UTC, date, datetime

    from cleanroom.policy.activation import Activation, active_record_path

    start(store, secrets)
    record = Activation(collaboration="aurora-2026", content_hash="ab" * 32, activated_at=datetime(2026, 3, 1, tzinfo=UTC),
                        actor="compliance:aurora-motors", signers=["aurora-motors"], policy_file="policies/aurora-2026.yaml",
                        valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31))
    path = active_record_path(store, "aurora-2026")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.model_dump_json())  # the pointer switched, then the process died
    gw = start(store, secrets)
    activations = [e.details for e in gw.audit.entries() if e.event == "policy.activate"]
    assert len(activations) == 1 and activations[0]["content_hash"] == "ab" * 32 and activations[0]["recovered"] is True
    start(store, secrets)
    assert sum(1 for e in gw.audit.entries() if e.event == "policy.activate") == 1


def test_a_delayed_anchor_moves_once_per_burst_and_on_close(store: Path, secrets: GatewaySecrets) -> None:
    import time

    ledger, audit = Ledger(store / "budget.sqlite"), AuditLog(store / "audit.jsonl")
    anchor = guard_store(store, ledger, audit, secrets, delay_s=0.2)
    gw = Gateway.__new__(Gateway)
    gw.store, gw.secrets, gw.ledger, gw.audit, gw.anchor = store, secrets, ledger, audit, anchor
    gw.query("q1")
    gw.query("q2")
    assert anchor_data(store)["ledger"]["charges"] == 0  # not yet: one move for the burst
    deadline = time.monotonic() + 10
    while anchor_data(store)["ledger"]["charges"] != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert anchor_data(store)["ledger"]["charges"] == 2 and anchor_data(store)["audit"]["entries"] == 2
    gw.query("q3")
    anchor.close()  # shutdown writes the pending move at once
    assert anchor_data(store)["ledger"]["charges"] == 3 and anchor_data(store)["audit"]["entries"] == 3
    start(store, secrets)
