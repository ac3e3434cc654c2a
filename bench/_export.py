"""The consented rows the engine reads, exported to Parquet, and the engine's exact answer.

Both go through the product's own code: ``build_scope`` with ``consent_applied=True`` and the
store's consented views (``cleanroom.gateway.release._consented_views``), exactly as a release
opens its reader. So the Parquet files hold the very rows the engine aggregates at that moment,
and the baseline and every peer answer the question over the same rows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cleanroom.engine import compile_query, execute
from cleanroom.gateway.release import _consented_views, build_scope
from cleanroom.partners import Partner
from cleanroom.policy.model import Policy
from cleanroom.store import Store

from peers import cohort

TIMEOUT_S = 3600.0
# the template whose consent purposes each export set uses (cohort.TABLES)
PURPOSE_TEMPLATE = {"measurement": "funnel", "attribution+measurement": "attribution"}


def scope_for(store: Store, policy: Policy, partners: dict[str, Partner], template: str, now: datetime | None = None) -> Any:
    """The brand analyst's scope as ``release_query`` builds it (consent applied by the store, stored row maxima)."""
    rule = policy.template_rule(template)
    return build_scope(policy, partners, "brand", rule, now or datetime.now(UTC), consent_applied=True, stored=store.active_versions())


def export(store: Store, policy: Policy, partners: dict[str, Partner], dest: Path) -> dict[str, Any]:
    """Every table of ``cohort.TABLES`` as ``dest/<purposes>/<view>.parquet``; rows and seconds per set."""
    out: dict[str, Any] = {}
    now = datetime.now(UTC)
    for purposes, template in PURPOSE_TEMPLATE.items():
        tables = sorted({t for p, ts in cohort.TABLES.values() if p == purposes for t in ts})
        scope = scope_for(store, policy, partners, template, now)
        by_view = {ref.view: q for q, ref in scope.datasets.items()}
        compiled = _FakeCompiled([by_view[t] for t in tables])
        folder = dest / purposes
        folder.mkdir(parents=True, exist_ok=True)
        started, rows = time.perf_counter(), 0
        with store.reader(_consented_views(scope, compiled), timeout_s=TIMEOUT_S, consent_at=scope.now) as con:
            for table in tables:
                target = folder / f"{table}.parquet"
                data = con.execute(f"SELECT * FROM {table}").fetch_arrow_table()  # the reader may not write files itself
                pq.write_table(data, target)
                rows += data.num_rows
        out[purposes] = {"tables": len(tables), "rows": rows, "seconds": round(time.perf_counter() - started, 2), "consent_at": now.isoformat()}
    return out


class _FakeCompiled:
    """Only what ``_consented_views`` reads of a compiled query: the datasets it names."""

    def __init__(self, datasets: list[str]) -> None:
        self.datasets = datasets


def engine_exact(store: Store, policy: Policy, partners: dict[str, Partner], template: str, params: dict[str, Any]) -> Any:
    """Compile, open the reader with the consented views, execute: the exact aggregates, no budget, no noise."""
    scope = scope_for(store, policy, partners, template)
    compiled = compile_query(template, params, scope)
    with store.reader(_consented_views(scope, compiled), timeout_s=TIMEOUT_S, consent_at=scope.now) as con:
        return execute(compiled, con)


__all__ = ["engine_exact", "export", "scope_for"]
