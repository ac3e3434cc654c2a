"""A read-only view of the ledger for people: spent and remaining per month and partner.

Why the limits come from the ledger: each charge records the budgets that were in force when it
was made, so ``cleanroom budget show`` can say what is left without loading (or trusting) a
policy file, and an operator sees exactly the limits the gateway applied.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cleanroom.budget.epsilon import Epsilon
from cleanroom.budget.ledger import Limits, Remaining, Spent, remaining_under


class PartnerMonth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    spent_queries: Epsilon
    spent_reports: Epsilon
    spent: Epsilon
    remaining_queries: Epsilon
    remaining_reports: Epsilon
    limits: Limits


class MonthSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    month: str
    partners: list[PartnerMonth]
    spent: Epsilon
    collaboration_cap: Epsilon
    collaboration_remaining_queries: Epsilon


class BudgetSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    collaboration: str
    months: list[MonthSummary]
    lifetime: Epsilon


SPENT_SQL = """
SELECT month, partner,
       SUM(micro) FILTER (WHERE purpose = 'query') AS q,
       SUM(micro) FILTER (WHERE purpose = 'report') AS r,
       MAX(id) AS last_id
FROM charges WHERE collaboration = ? {month_filter}
GROUP BY month, partner ORDER BY month, partner
"""


def summarize(path: Path, collaboration: str, month: str | None = None) -> BudgetSummary:
    """Summarize the ledger at ``path`` (a missing ledger means nothing was ever spent)."""
    if not path.exists():
        return BudgetSummary(collaboration=collaboration, months=[], lifetime=Epsilon.zero())
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        rows = con.execute(SPENT_SQL.format(month_filter="AND month = ?" if month else ""), (collaboration, month) if month else (collaboration,)).fetchall()
        limits = {r[4]: _limits_of(con, r[4]) for r in rows}
        lifetime = con.execute("SELECT COALESCE(SUM(micro), 0) FROM charges WHERE collaboration = ?", (collaboration,)).fetchone()[0]
    finally:
        con.close()
    months = sorted({r[0] for r in rows})
    per_month = [_month(m, [r for r in rows if r[0] == m], limits) for m in months]
    return BudgetSummary(collaboration=collaboration, months=per_month, lifetime=Epsilon(int(lifetime)))


def _limits_of(con: sqlite3.Connection, charge_id: int) -> Limits:
    row = con.execute("SELECT partner_budget, collaboration_cap, report_reserve, collaboration_reserve FROM charges WHERE id = ?", (charge_id,)).fetchone()
    return Limits(partner_budget=Epsilon(row[0]), collaboration_cap=Epsilon(row[1]), report_reserve=Epsilon(row[2]), collaboration_reserve=Epsilon(row[3]))


def _month(month: str, rows: list[tuple[str, str, int | None, int | None, int]], limits: dict[int, Limits]) -> MonthSummary:
    all_q, all_r = sum(r[2] or 0 for r in rows), sum(r[3] or 0 for r in rows)
    partners = [_partner(r, all_q, all_r, limits[r[4]]) for r in rows]
    latest = limits[max(r[4] for r in rows)]
    overall = remaining_under(Spent(partner_query=0, partner_report=0, all_query=all_q, all_report=all_r), latest, "query")
    return MonthSummary(month=month, partners=partners, spent=Epsilon(all_q + all_r), collaboration_cap=latest.collaboration_cap, collaboration_remaining_queries=overall.collaboration)


def _partner(row: tuple[str, str, int | None, int | None, int], all_q: int, all_r: int, limits: Limits) -> PartnerMonth:
    spent = Spent(partner_query=row[2] or 0, partner_report=row[3] or 0, all_query=all_q, all_report=all_r)
    queries: Remaining = remaining_under(spent, limits, "query")
    reports: Remaining = remaining_under(spent, limits, "report")
    return PartnerMonth(
        partner=row[1],
        spent_queries=Epsilon(spent.partner_query),
        spent_reports=Epsilon(spent.partner_report),
        spent=Epsilon(spent.partner_query + spent.partner_report),
        remaining_queries=Epsilon(min(queries.partner.micro, queries.collaboration.micro)),
        remaining_reports=Epsilon(min(reports.partner.micro, reports.collaboration.micro)),
        limits=limits,
    )


__all__ = ["BudgetSummary", "MonthSummary", "PartnerMonth", "summarize"]
