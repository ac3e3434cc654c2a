"""Engine test kit (imported by name: pytest puts this folder on sys.path): a Scope built from the
real partner files, and tiny DuckDB tables named like the store's views, filled from hand-written
rows whose true answers the tests know."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cleanroom.engine import DatasetRef, Scope, view_name
from cleanroom.partners import load_partners

REPO = Path(__file__).resolve().parents[3]
PARTNERS = load_partners(REPO / "partners")
NOW = datetime(2026, 11, 15, 12, 0, 0)
T0 = datetime(2026, 1, 1, 9, 0, 0)

DOMAINS: dict[str, list[str]] = {
    "model": ["aster", "borealis", "cirrus", "dune", "ember", "fjord"],
    "region": ["north", "south", "east", "west", "central"],
    "channel": ["search", "social", "display", "email", "direct", "video"],
    "campaign": [
        "spring_launch", "summer_drive", "autumn_ev", "winter_service",
        "loyalty_upgrade", "fleet_offer", "ev_test_week", "brand_always_on",
    ],
    "source": ["web", "walk_in", "phone", "event"],
    "dealer_id": [f"NS-0{i}" for i in range(1, 7)] + [f"LA-0{i}" for i in range(1, 5)],
    "price_band": ["<30k", "30-45k", "45-60k", "60k+"],
    "amount_band": ["<20k", "20-35k", "35-50k", "50k+"],
    "product": ["loan", "lease", "balloon"],
    "decision": ["approved", "declined"],
    "configurator_completed": ["true", "false"],
    "dealer_group": ["northside-dealers", "lakeside-autos"],
    "month": [f"2025-{m:02d}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)],
}
SQL_TYPES = {"string": "VARCHAR", "int64": "BIGINT", "bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}


def all_qualified() -> list[str]:
    return sorted(f"{p.id}.{d}" for p in PARTNERS.values() for d in p.datasets)


def make_scope(**overrides: Any) -> Scope:
    """Every dataset of the demo partners, every pair joinable, demo domains; override freely."""
    datasets = {}
    for p in PARTNERS.values():
        for name, ds in p.datasets.items():
            q = f"{p.id}.{name}"
            cols = {c: col.tag for c, col in ds.columns.items() if col.tag not in ("join_key", "private")}
            datasets[q] = DatasetRef(partner=p.id, partner_role=p.role, dataset=name, view=view_name(q), columns=cols)
    keys = [q for q in datasets if not q.endswith(".consent")]
    fields: dict[str, Any] = {
        "datasets": datasets,
        "consent_purposes": ["measurement"],
        "domains": DOMAINS,
        "measure_bounds": {
            "northside-dealers.sales.price_eur": (0, 100_000),
            "lakeside-autos.sales.price_eur": (0, 100_000),
            "aurora-financial.contracts.amount_eur": (0, 80_000),
        },
        "max_groups_per_person": 4,
        "max_rows_per_person": 20,
        "approved_joins": frozenset(frozenset((a, b)) for a in keys for b in keys if a < b),
        "filterable_columns": frozenset(["model", "region", "dealer_group", "month", "channel", "source", "product", "campaign"]),
        "now": NOW,
    }
    fields.update(overrides)
    return Scope(**fields)


class Tables:
    """Tiny tables with the store's view names (pid BIGINT + declared columns)."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.columns: dict[str, list[str]] = {}
        self.types: dict[str, dict[str, str]] = {}
        for p in PARTNERS.values():
            for name, ds in p.datasets.items():
                view = view_name(f"{p.id}.{name}")
                cols = [c for c in ds.columns if c != "hid"]
                decl = ", ".join(["pid BIGINT"] + [f'"{c}" {SQL_TYPES[ds.columns[c].type]}' for c in cols])
                self.con.execute(f"CREATE TABLE {view} ({decl})")
                self.columns[view] = ["pid", *cols]
                self.types[view] = {"pid": "BIGINT", **{c: SQL_TYPES[ds.columns[c].type] for c in cols}}

    def add(self, qualified: str, rows: Iterable[dict[str, Any]]) -> Tables:
        """Append rows (missing keys are NULL); one Arrow batch, since executemany is slow."""
        view = view_name(qualified)
        cols = self.columns[view]
        data = [{c: r.get(c) for c in cols} for r in rows]
        if data:
            batch = pa.Table.from_pylist(data)
            self.con.register("incoming", batch)
            casts = ", ".join(f'CAST("{c}" AS {self.types[view][c]})' for c in cols)
            self.con.execute(f"INSERT INTO {view} SELECT {casts} FROM incoming")
            self.con.unregister("incoming")
        return self

    def consent(self, partner: str, pids: Iterable[int], purposes: Iterable[str] = ("measurement", "attribution", "analytics"),
                granted: datetime = datetime(2025, 1, 1), revoked: datetime | None = None) -> Tables:
        rows = [{"pid": p, "purpose": u, "granted_at": granted, "revoked_at": revoked} for p in pids for u in purposes]
        return self.add(f"{partner}.consent", rows)

    def consent_everyone(self, pids: Iterable[int]) -> Tables:
        pids = list(pids)
        for partner in PARTNERS:
            self.consent(partner, pids)
        return self


def at(days: float, base: datetime = T0) -> datetime:
    return base + timedelta(days=days)


def day(days: int, base: date = date(2026, 1, 1)) -> date:
    return base + timedelta(days=days)


def values_of(result: Any, part: str) -> dict[str, int]:
    """Non-zero cells of one part as {"a|b": value}: what the tests compare."""
    p = result.part(part)
    return {"|".join(c): v for c, v in zip(p.cells, p.values, strict=True) if v}
