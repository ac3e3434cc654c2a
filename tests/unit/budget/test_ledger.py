"""The ledger: atomic charges across threads and processes, exact sums, reservations, the cache."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cleanroom.budget import Charge, Epsilon, Ledger
from cleanroom.errors import BudgetError, InternalError

E = Epsilon.parse
ZERO = Epsilon.zero()
MONTH = "2026-03"


def charge(ledger: Ledger, eps: str | float = "0.1", *, partner: str = "aurora-motors", purpose: str = "query", budget: str = "1", cap: str = "10", reserve: Epsilon | str = ZERO, month: str = MONTH, qid: str = "q", **kw: Any) -> Charge:
    return ledger.charge(
        collaboration="aurora-2026", partner=partner, month=month, epsilon=E(eps), partner_budget=E(budget),
        collaboration_cap=E(cap), report_reserve=reserve if isinstance(reserve, Epsilon) else E(reserve),
        purpose=purpose, query_id=qid, actor="analyst@aurora", **kw,  # type: ignore[arg-type]
    )


@pytest.fixture()
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "store" / "budget.sqlite")


def test_exact_arithmetic_reaches_exactly_one(ledger: Ledger) -> None:
    charges = [charge(ledger, 0.1, qid=f"q{i}") for i in range(10)]
    assert charges[-1].partner_remaining == ZERO
    assert ledger.spent("aurora-2026", "aurora-motors", MONTH) == E(1)
    with pytest.raises(BudgetError) as err:
        charge(ledger, "0.000001")
    assert err.value.code == "budget.exhausted"
    assert "0 epsilon left" in err.value.message and err.value.details["requested"] == "0.000001"


def test_charge_reports_what_is_left(ledger: Ledger) -> None:
    first = charge(ledger, "0.3", budget="1", cap="2", reserve="0.2")
    assert (first.epsilon, first.partner_remaining, first.collaboration_remaining) == (E("0.3"), E("0.5"), E("1.5"))
    with pytest.raises(BudgetError) as err:
        charge(ledger, "0.6", budget="1", cap="2", reserve="0.2")
    assert "partner aurora-motors has 0.5 epsilon left for queries in 2026-03; this query needs 0.6" in err.value.message
    assert err.value.details["partner_remaining"] == "0.5"


def test_queries_cannot_touch_the_report_reservation(ledger: Ledger) -> None:
    charge(ledger, "0.8", reserve="0.2")
    with pytest.raises(BudgetError):
        charge(ledger, "0.1", reserve="0.2")
    report = charge(ledger, "0.2", purpose="report", reserve="0.2")
    assert report.partner_remaining == ZERO


def test_reports_may_use_unspent_query_budget(ledger: Ledger) -> None:
    charge(ledger, "0.3", purpose="report", reserve="0.2")  # 0.2 reserved + 0.1 from the free budget
    left = ledger.remaining(collaboration="aurora-2026", partner="aurora-motors", month=MONTH, partner_budget=E(1), collaboration_cap=E(10), report_reserve=E("0.2"))
    assert left.partner == E("0.7")  # 1 - 0.3 spent by the report, reservation fully used


def test_collaboration_cap_binds_all_partners_together(ledger: Ledger) -> None:
    charge(ledger, "0.6", partner="aurora-motors", cap="1.5", reserve="0.1")
    charge(ledger, "0.6", partner="northside-dealers", cap="1.5", reserve="0.1")
    with pytest.raises(BudgetError) as err:
        charge(ledger, "0.3", partner="lakeside-autos", cap="1.5", reserve="0.1")
    assert err.value.message.startswith("collaboration has 0.2 epsilon left for queries")
    # the collaboration-wide reservation can be larger than one partner's
    with pytest.raises(BudgetError):
        charge(ledger, "0.1", partner="lakeside-autos", cap="1.5", reserve="0.1", collaboration_reserve=E("0.3"))


def test_months_and_collaborations_are_separate_and_lifetime_sums_all(ledger: Ledger) -> None:
    charge(ledger, "1", month="2026-03")
    charge(ledger, "1", month="2026-04")
    charge(ledger, "0.5", month="2026-04", partner="aurora-financial")
    assert ledger.spent("aurora-2026", "aurora-motors", "2026-04") == E(1)
    assert ledger.lifetime("aurora-2026") == E("2.5")
    assert ledger.lifetime("other") == ZERO


def test_charges_survive_reopening_and_cannot_be_refunded(ledger: Ledger) -> None:
    charge(ledger, "0.4")
    again = Ledger(ledger.path)
    assert again.spent("aurora-2026", "aurora-motors", MONTH) == E("0.4")
    con = sqlite3.connect(ledger.path)
    for sql in ("DELETE FROM charges", "UPDATE charges SET micro = 1"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only|never refunded"):
            con.execute(sql)
    con.close()
    assert again.charges("aurora-2026")[0]["epsilon"] == "0.4"


def test_ledger_file_is_private_and_in_wal_mode(ledger: Ledger) -> None:
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    con = sqlite3.connect(ledger.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


@pytest.mark.parametrize("eps", [0, -1, float("nan"), float("inf"), 1e-9, "abc"])
def test_invalid_charge_epsilon(ledger: Ledger, eps: object) -> None:
    with pytest.raises(BudgetError) as err:
        charge(ledger, eps)  # type: ignore[arg-type]
    assert err.value.code == "budget.invalid_epsilon"
    assert ledger.lifetime("aurora-2026") == ZERO


@pytest.mark.parametrize("month", ["2026-13", "2026-3", "26-03", ""])
def test_bad_month_is_a_caller_bug(ledger: Ledger, month: str) -> None:
    with pytest.raises(InternalError):
        charge(ledger, month=month)


# --- concurrency ------------------------------------------------------------------------------------


def _race(run: Callable[[int], str], n: int) -> list[str]:
    """Start n threads behind a barrier so that their charges really overlap."""
    barrier, results = threading.Barrier(n), [""] * n

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = run(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _try_charge(path: Path, i: int) -> str:
    try:
        charge(Ledger(path), "0.1", qid=f"q{i}")
        return "ok"
    except BudgetError as exc:
        return exc.code


def test_fifty_threads_charge_exactly_ten(ledger: Ledger) -> None:
    results = _race(lambda i: _try_charge(ledger.path, i), 50)
    assert results.count("ok") == 10 and results.count("budget.exhausted") == 40
    assert ledger.spent("aurora-2026", "aurora-motors", MONTH) == E(1)


def _process_worker(path: str, i: int, barrier: Any, out: Any) -> None:
    barrier.wait()
    out.put(_try_charge(Path(path), i))


def test_fifty_processes_charge_exactly_ten(ledger: Ledger) -> None:
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(50), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(str(ledger.path), i, barrier, out)) for i in range(50)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results.count("ok") == 10 and results.count("budget.exhausted") == 40
    assert ledger.spent("aurora-2026", "aurora-motors", MONTH) == E(1)
    assert len(ledger.charges("aurora-2026")) == 10


# --- release cache --------------------------------------------------------------------------------


def test_identical_query_gets_the_stored_result(ledger: Ledger) -> None:
    assert ledger.cached("k1") is None
    kept = ledger.store_result("k1", "q1", "aurora-motors", {"rows": [[1, 2]], "scale": 2.5})
    assert kept == ledger.cached("k1") == {"rows": [[1, 2]], "scale": 2.5}
    stored = ledger.get_result("q1")
    assert stored is not None and (stored.partner, stored.key, stored.payload) == ("aurora-motors", "k1", kept)
    assert ledger.get_result("nope") is None


def test_racing_identical_queries_release_one_answer(ledger: Ledger) -> None:
    results = _race(lambda i: str(ledger.store_result("same", f"q{i}", "aurora-motors", {"noise": i})["noise"]), 20)
    assert len(set(results)) == 1  # every caller releases the first stored answer
    seen = {ledger.get_result(f"q{i}").payload["noise"] for i in range(20)}  # type: ignore[union-attr]
    assert seen == {int(results[0])}


def test_cache_refuses_non_json_and_reused_query_ids(ledger: Ledger) -> None:
    with pytest.raises(InternalError):
        ledger.store_result("k", "q", "p", {"x": float("nan")})
    ledger.store_result("k1", "q1", "p", {"a": 1})
    with pytest.raises(InternalError):
        ledger.store_result("k2", "q1", "p", {"a": 2})
    assert ledger.cached("k2") is None  # the failed store left nothing behind
