"""The cohort funnel, computed three ways, agrees cell for cell.

1. The engine: the EXACT aggregates of ``funnel`` (its ``reached`` partition: cohort persons by
   furthest stage), on a real signed collaboration (``collab.ExactOracle``).
2. This module: a pure-Python recomputation from the raw partner CSVs (own identity
   normalization via tests/unit/synth/_synth_recompute.py, each partner's own consent, each
   person's earliest rows per dataset), person by person, straight from the definition in
   engine/templates/funnel.py.
3. The generator's ground truth (``ground_truth.json``, cleanroom/synth/truth.py, numpy).

The collaboration runs the shipped policy (at most 50 rows per person and dataset, which the
synthetic data never reaches), so all three must agree exactly. The synthetic journeys never sit
on an edge of the definition (no ties, every stage well inside the window, contracts 0-14 days
after a sale), so the collaboration's raw files also hold a few hand-made persons that do
(EDGES): each gets the furthest stage the definition gives it, and the engine and truth.py must
agree. The row bound is exercised on its own: the same queries with the scope's bound lowered to
1 row per person, where it changes who reaches which stage. Then the demo-sized data (20,000
customers, as ``cleanroom demo``): every stage count is at most the previous one and every
conversion lies in [0, 1].
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from collab import COLLABORATION, Collab, ExactOracle, build_collab

from cleanroom.aggregate import ExactResult
from cleanroom.engine import compile_query, execute, views_for
from cleanroom.gateway.release import build_scope
from cleanroom.partners import Dataset, load_partners
from cleanroom.policy.activation import active_policy
from cleanroom.synth import generate
from cleanroom.synth.calendar import Period
from cleanroom.synth.domains import COHORT_GROUPINGS, DEALER_GROUPS, DEFAULT_END_DATE, MAX_ROWS_PER_PERSON, MODELS, months
from cleanroom.synth.truth import Truth
from cleanroom.synth.writer import Output

BRAND, NORTH, FIN = "aurora-motors", "northside-dealers", "aurora-financial"
DEALERS = list(DEALER_GROUPS)
TIGHT_ROWS = 1  # a row bound that binds in the synthetic data (a second lead, a later application)
WINDOW = 90
FINANCED_DAYS = (7, 30)
MONTHS = list(months())
DOMAINS = {"model": list(MODELS), "dealer_group": DEALERS, "month": MONTHS}

# stage -> (partners, dataset, required decision or None); each funnel by entry.
STAGE_ROWS = {
    "configurator": ([BRAND], "web_sessions", None),
    "lead": (DEALERS, "leads", None),
    "test_drive": (DEALERS, "test_drives", None),
    "sale": (DEALERS, "sales", None),
    "application": ([FIN], "applications", None),
    "approved": ([FIN], "applications", "approved"),
    "contract": ([FIN], "contracts", None),
}
FUNNELS = {
    "configurator": ["configurator", "lead", "test_drive", "sale"],
    "lead": ["lead", "test_drive", "sale"],
    "application": ["application", "approved", "contract"],
}

# (caller, params): what the engine is asked; the financed branch needs the contracts join (not dealers).
QUERIES: list[tuple[str, dict[str, Any]]] = [
    (BRAND, {}),
    (BRAND, {"dimensions": ["model"]}),
    (BRAND, {"dimensions": ["month"]}),
    (BRAND, {"dimensions": ["model"], "filters": {"month": ["2026-03", "2026-04"]}}),
    (BRAND, {"entry": "lead", "dimensions": ["dealer_group"]}),
    (NORTH, {"entry": "lead", "dimensions": ["dealer_group"]}),
    (FIN, {"entry": "application"}),
    (BRAND, {"window_days": 30}),
]


def _load_reader(repo: Path) -> ModuleType:
    """The synth tests' independent CSV reader (identity rule and consent), loaded by path."""
    spec = importlib.util.spec_from_file_location("_cohort_synth_recompute", repo / "tests" / "unit" / "synth" / "_synth_recompute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# --- the independent recomputation -------------------------------------------------------------------


class Raw:
    """The raw CSV rows of a run, keyed by identity, with each dataset's column types and row order."""

    def __init__(self, raw_dir: Path, repo: Path) -> None:
        self.repo = repo
        self.rec = _load_reader(repo).read_run(raw_dir)
        self.schemas: dict[tuple[str, str], Dataset] = {
            (pid, name): ds for pid, partner in load_partners(repo / "partners").items() for name, ds in partner.datasets.items()
        }
        self._bounded: dict[int, dict[tuple[str, str], list[dict[str, Any]]]] = {}

    def event_time(self, partner: str, dataset: str) -> str:
        schema = self.schemas[(partner, dataset)]
        return next(n for n, c in schema.columns.items() if c.tag == "timestamp")

    def rows(self, bound: int, partner: str, dataset: str) -> list[dict[str, Any]]:
        """Measurement-consented rows, each person's earliest ``bound`` rows (event time, then every
        dimension, measure and timestamp column in declared order), with typed values."""
        if bound not in self._bounded:
            self._bounded[bound] = {}
        cache = self._bounded[bound]
        if (partner, dataset) not in cache:
            schema = self.schemas[(partner, dataset)]
            first = self.event_time(partner, dataset)
            order = [first, *(n for n, c in schema.columns.items() if c.tag in ("dimension", "measure", "timestamp") and n != first)]
            consented = self.rec.consent[partner]["measurement"]
            by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for raw in self.rec.rows.get((partner, dataset), []):
                if raw["_key"] is not None:
                    typed = {n: _typed(raw[n], schema.columns[n].type) for n in schema.columns if n in raw}
                    by_person[raw["_key"]].append({**typed, "_key": raw["_key"], "_partner": partner})
            kept = []
            for key, rows in by_person.items():
                if key in consented:
                    kept += sorted(rows, key=lambda r: tuple(r[n] for n in order))[:bound]
            cache[(partner, dataset)] = kept
        return cache[(partner, dataset)]

    def stage(self, bound: int, stage: str) -> list[tuple[str, datetime, dict[str, Any]]]:
        """(person, event time as a datetime, row) of a stage's rows."""
        partners, dataset, decision = STAGE_ROWS[stage]
        out = []
        for p in partners:
            column = self.event_time(p, dataset)
            for r in self.rows(bound, p, dataset):
                if decision is None or r["decision"] == decision:
                    t = r[column]
                    out.append((r["_key"], t if isinstance(t, datetime) else datetime.combine(t, datetime.min.time()), r))
        return out


def _typed(value: str, kind: str) -> Any:
    if kind == "timestamp":
        return datetime.fromisoformat(value) if value else None
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "int64":
        return int(value)
    if kind == "bool":
        return value == "true"
    return value


def _dim_value(dim: str, t: datetime, row: dict[str, Any]) -> str | None:
    if dim == "month":
        return t.strftime("%Y-%m")
    if dim == "dealer_group":
        return row["_partner"] if row["_partner"] in DEALERS else None
    value = row.get(dim)
    return None if value is None else str(value)


def recompute(raw: Raw, params: dict[str, Any], bound: int, financed_branch: bool) -> Counter[tuple[str, ...]]:
    """Cohort persons by (furthest stage, *grouped values)."""
    return Counter(furthest_by_person(raw, params, bound, financed_branch).values())


def furthest_by_person(raw: Raw, params: dict[str, Any], bound: int, financed_branch: bool) -> dict[str, tuple[str, ...]]:
    """Each cohort person's (furthest stage, *grouped values), from the definition, one person at a time."""
    entry = params.get("entry", "configurator")
    window = timedelta(days=params.get("window_days", WINDOW))
    dims: list[str] = params.get("dimensions", [])
    filters: dict[str, list[str]] = params.get("filters", {})
    keys = [*dims, *(d for d in filters if d not in dims), *(["month"] if "month" not in dims and "month" not in filters else [])]
    stages = FUNNELS[entry]
    # the first entry row: earliest time, ties by the public order of each dimension (unknown last)
    first: dict[str, tuple[tuple[Any, ...], datetime, dict[str, str | None]]] = {}
    for person, t, row in raw.stage(bound, stages[0]):
        values = {d: _dim_value(d, t, row) for d in keys}
        rank = (t, *(DOMAINS[d].index(v) if v in DOMAINS[d] else len(DOMAINS[d]) for d, v in values.items()))
        if person not in first or rank < first[person][0]:
            first[person] = (rank, t, values)
    cohort = {
        person: (t0, values) for person, (_, t0, values) in first.items()
        if all(values[d] in DOMAINS[d] for d in keys) and all(values[d] in allowed for d, allowed in filters.items())
    }
    times: dict[str, dict[str, list[datetime]]] = {s: defaultdict(list) for s in stages[1:]}
    for s in stages[1:]:
        for person, t, _ in raw.stage(bound, s):
            times[s][person].append(t)
    contracts: dict[str, list[date]] = defaultdict(list)
    for person, t, _ in raw.stage(bound, "contract"):
        contracts[person].append(t.date())
    out: dict[str, tuple[str, ...]] = {}
    for person, (t0, values) in cohort.items():
        furthest, t_prev = stages[0], t0
        for s in stages[1:]:
            if s == "contract":  # a date: compare calendar days
                ok = [t for t in times[s][person] if t_prev.date() <= t.date() <= t0.date() + window]
            else:
                ok = [t for t in times[s][person] if t_prev <= t <= t0 + window]
            if not ok:
                break
            furthest, t_prev = s, min(ok)
        if furthest == "sale" and financed_branch:
            before, after = FINANCED_DAYS
            if any(t_prev.date() - timedelta(days=before) <= d <= t_prev.date() + timedelta(days=after) for d in contracts[person]):
                furthest = "financed"
        out[person] = (furthest, *(str(values[d]) for d in dims))
    return out


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    def write_raw(raw_dir: Path) -> None:
        shutil.copytree(synth_4k, raw_dir, dirs_exist_ok=True)
        append_edges(raw_dir, repo)

    return build_collab(tmp_path_factory.mktemp("cohort") / "collab", repo, write_raw=write_raw)


@pytest.fixture(scope="module")
def oracle(collab: Collab) -> Iterator[ExactOracle]:
    made = ExactOracle(collab)
    yield made
    made.close()


@pytest.fixture(scope="module")
def raw(collab: Collab, repo: Path) -> Raw:
    """The collaboration's raw files: the synthetic customers and the edge persons."""
    return Raw(collab.raw, repo)


@pytest.fixture(scope="module")
def synth_raw(synth_4k: Path, repo: Path) -> Raw:
    """The synthetic customers only, as the generator wrote them next to their ground truth."""
    return Raw(synth_4k, repo)


# --- the engine against the definition ------------------------------------------------------------------


def exact_with_bound(oracle: ExactOracle, caller: str, params: dict[str, Any], max_rows: int) -> ExactResult:
    """``ExactOracle.exact`` with the scope's per-person row bound replaced by ``max_rows``."""
    partners = oracle.partners
    policy = active_policy(COLLABORATION, oracle.collab.policies, oracle.collab.store, partners)
    scope = build_scope(policy, partners, partners[caller].role, policy.template_rule("funnel"), datetime.now(UTC))
    scope = scope.model_copy(update={"max_rows_per_person": max_rows})
    with oracle.store.reader(views_for(scope)) as con:
        return execute(compile_query("funnel", params, scope), con)


def check_cells(exact: ExactResult, caller: str, params: dict[str, Any], raw: Raw, bound: int) -> None:
    part = exact.part("reached")
    entry = params.get("entry", "configurator")
    financed = caller != NORTH and entry != "application"  # dealers may not join sales with contracts
    stages = FUNNELS[entry] + (["financed"] if financed else [])
    assert exact.meta["stages"] == stages
    assert ("financed" in exact.meta["stages_omitted"]) == (entry != "application" and not financed)
    dims = params.get("dimensions", [])
    expected_cells = [(s,) for s in stages]
    for d in dims:
        expected_cells = [(*c, v) for c in expected_cells for v in DOMAINS[d]]
    assert [tuple(c) for c in part.cells] == expected_cells, "every cell of the public domains, stage slowest"
    got = {tuple(c): v for c, v in zip(part.cells, part.values, strict=True)}
    want = recompute(raw, params, bound, financed)
    assert sum(want.values()) > 100, "a cohort worth comparing"
    assert len({c[0] for c, n in want.items() if n}) == len(stages), "every stage is someone's furthest"
    mismatches = {c: (got[c], want.get(c, 0)) for c in got if got[c] != want.get(c, 0)}
    assert not mismatches, f"engine vs recomputation (engine, expected): {mismatches}"
    assert set(want) <= set(got)


@pytest.mark.parametrize("query", range(len(QUERIES)), ids=[f"{c.split('-')[0]}-{json.dumps(p, sort_keys=True)}" for c, p in QUERIES])
def test_engine_cohort_funnel_matches_the_recomputation_cell_for_cell(query: int, oracle: ExactOracle, raw: Raw) -> None:
    caller, params = QUERIES[query]
    check_cells(oracle.exact(caller, "funnel", params), caller, params, raw, MAX_ROWS_PER_PERSON)


TIGHT_QUERIES = [
    pytest.param(BRAND, {"dimensions": ["model"]}, id="brand-model"),
    pytest.param(BRAND, {"entry": "lead", "dimensions": ["dealer_group"]}, id="brand-lead-dealer_group"),
    pytest.param(FIN, {"entry": "application"}, id="finance-application"),  # approved = approved among the earliest rows
]


@pytest.mark.parametrize("caller,params", TIGHT_QUERIES)
def test_engine_applies_the_row_bound_like_the_definition(caller: str, params: dict[str, Any], oracle: ExactOracle, raw: Raw) -> None:
    entry = params.get("entry", "configurator")
    loose = recompute(raw, params, MAX_ROWS_PER_PERSON, entry != "application")
    assert recompute(raw, params, TIGHT_ROWS, entry != "application") != loose, "the tight bound must change the answer"
    check_cells(exact_with_bound(oracle, caller, params, TIGHT_ROWS), caller, params, raw, TIGHT_ROWS)


# --- the ground truth against the definition -------------------------------------------------------------


def _truth_cells(block: dict[str, Any]) -> dict[str, int]:
    return dict(block["furthest"])


def test_ground_truth_uses_the_shipped_policy_row_bound(repo: Path) -> None:
    policy = yaml.safe_load((repo / "policies" / f"{COLLABORATION}.yaml").read_text())
    assert policy["privacy"]["max_rows_per_person"] == MAX_ROWS_PER_PERSON


@pytest.mark.parametrize("entry,dim", [("configurator", None), ("configurator", "model"), ("configurator", "month"),
                                       ("lead", None), ("lead", "dealer_group"), ("application", None)])
def test_ground_truth_cohort_matches_the_recomputation(entry: str, dim: str | None, collab: Collab, synth_raw: Raw) -> None:
    assert collab.truth is not None
    cohort = collab.truth["funnel"]["cohort"][entry]
    assert collab.truth["funnel"]["max_rows_per_person"] == MAX_ROWS_PER_PERSON
    params: dict[str, Any] = {"entry": entry, "dimensions": [dim] if dim else []}
    want = recompute(synth_raw, params, MAX_ROWS_PER_PERSON, financed_branch=entry != "application")
    if dim is None:
        assert _truth_cells(cohort["overall"]) == {s: want.get((s,), 0) for s in cohort["stages"]}
    else:
        cells = cohort["by"][dim]["cells"]
        assert list(cells) == DOMAINS[dim]
        for value, block in cells.items():
            assert _truth_cells(block) == {s: want.get((s, value), 0) for s in cohort["stages"]}, value


def test_ground_truth_keeps_stage_activity_apart(collab: Collab) -> None:
    assert collab.truth is not None
    funnel = collab.truth["funnel"]
    assert set(funnel["stage_activity"]) == {"stages", "overall", "by", "median_days"}
    assert "conversion" not in json.dumps(funnel["stage_activity"])


# --- hand-made persons on the edges of the definition ------------------------------------------------------

# (person, partner, dataset, fields): rows appended to the synthetic raw files. Every edge person
# consents to everything at every partner; times are naive ISO as partners export them.
EdgeRow = tuple[str, str, str, dict[str, str]]
NS, LA = "northside-dealers", "lakeside-autos"
IDENTITY = ["crm_id", "first_name", "last_name", "email", "phone"]


def _journey(person: str, session: str, lead: str, drive: str, sales: list[str], contracts: list[str], model: str = "cirrus") -> list[EdgeRow]:
    rows: list[EdgeRow] = [(person, BRAND, "web_sessions", {"session_at": session, "model": model})]
    rows += [(person, NS, "leads", {"lead_at": lead}), (person, NS, "test_drives", {"drive_at": drive})]
    rows += [(person, NS, "sales", {"sold_at": t}) for t in sales]
    rows += [(person, FIN, "contracts", {"start_date": d}) for d in contracts]
    return rows


EDGES: list[EdgeRow] = [
    # the window: a stage exactly window_days after entry counts, one second later it does not
    ("window.in", BRAND, "web_sessions", {"session_at": "2026-03-01T10:00:00", "model": "aster"}),
    ("window.in", NS, "leads", {"lead_at": "2026-05-30T10:00:00"}),
    ("window.out", BRAND, "web_sessions", {"session_at": "2026-03-01T10:00:00", "model": "aster"}),
    ("window.out", NS, "leads", {"lead_at": "2026-05-30T10:00:01"}),
    # order: a lead before entry does not count, and nothing after it counts without it
    ("order", BRAND, "web_sessions", {"session_at": "2026-03-02T10:00:00"}),
    ("order", NS, "leads", {"lead_at": "2026-03-02T09:59:59"}),
    ("order", NS, "test_drives", {"drive_at": "2026-03-03T10:00:00"}),
    # every stage in the same second: each is at or after the previous one
    *_journey("same.second", "2026-03-02T11:00:00", "2026-03-02T11:00:00", "2026-03-02T11:00:00", ["2026-03-02T11:00:00"], []),
    # two first visits in the same second: the cohort cell is the model first in the public order
    ("tie", BRAND, "web_sessions", {"session_at": "2026-03-03T08:00:00", "model": "dune"}),
    ("tie", BRAND, "web_sessions", {"session_at": "2026-03-03T08:00:00", "model": "borealis"}),
    ("tie", BRAND, "web_sessions", {"session_at": "2026-03-04T08:00:00", "model": "aster"}),
    # financed: a contract starting 7 days before to 30 days after the sale day (23:59:59 on 2026-03-10)
    *_journey("fin.minus7", "2026-03-04T09:00:00", "2026-03-05T09:00:00", "2026-03-06T09:00:00", ["2026-03-10T23:59:59"], ["2026-03-03"]),
    *_journey("fin.minus8", "2026-03-04T09:00:00", "2026-03-05T09:00:00", "2026-03-06T09:00:00", ["2026-03-10T23:59:59"], ["2026-03-02"]),
    *_journey("fin.plus30", "2026-03-04T09:00:00", "2026-03-05T09:00:00", "2026-03-06T09:00:00", ["2026-03-10T23:59:59"], ["2026-04-09"]),
    *_journey("fin.plus31", "2026-03-04T09:00:00", "2026-03-05T09:00:00", "2026-03-06T09:00:00", ["2026-03-10T23:59:59"], ["2026-04-10"]),
    # financed is judged against the sale that was reached (the earliest), not a later one
    *_journey("fin.later.sale", "2026-03-04T09:00:00", "2026-03-05T09:00:00", "2026-03-06T09:00:00",
              ["2026-03-10T12:00:00", "2026-04-20T12:00:00"], ["2026-04-25"]),
    # the application funnel: contracts compare calendar days (same day as the approval counts)
    ("app.same.day", FIN, "applications", {"applied_at": "2026-03-05T15:00:00", "decision": "approved"}),
    ("app.same.day", FIN, "contracts", {"start_date": "2026-03-05"}),
    ("app.day.before", FIN, "applications", {"applied_at": "2026-03-05T15:00:00", "decision": "approved"}),
    ("app.day.before", FIN, "contracts", {"start_date": "2026-03-04"}),
    ("app.window.in", FIN, "applications", {"applied_at": "2026-03-05T15:00:00", "decision": "approved"}),
    ("app.window.in", FIN, "contracts", {"start_date": "2026-06-03"}),
    ("app.window.out", FIN, "applications", {"applied_at": "2026-03-05T15:00:00", "decision": "approved"}),
    ("app.window.out", FIN, "contracts", {"start_date": "2026-06-04"}),
    # approved after a declined application (with 1 row per person only the declined one counts)
    ("app.declined.first", FIN, "applications", {"applied_at": "2026-03-06T10:00:00", "decision": "declined"}),
    ("app.declined.first", FIN, "applications", {"applied_at": "2026-03-07T10:00:00", "decision": "approved"}),
    ("app.declined.first", FIN, "contracts", {"start_date": "2026-03-08"}),
    # a lead at both dealer groups in the same second: the cohort's dealer group is the first in the public order
    ("lead.tie", LA, "leads", {"lead_at": "2026-03-08T11:00:00"}),
    ("lead.tie", NS, "leads", {"lead_at": "2026-03-08T11:00:00"}),
    # first visit before the period: not in the cohort, even with a later visit inside it
    ("before.period", BRAND, "web_sessions", {"session_at": "2025-10-31T23:59:59"}),
    ("before.period", BRAND, "web_sessions", {"session_at": "2025-11-01T00:00:01"}),
    ("before.period", NS, "leads", {"lead_at": "2025-11-02T10:00:00"}),
]
# (params, person) -> its cohort cell per the definition; None: not in the cohort.
EDGE_CELLS: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("{}", "window.in"): ("lead",),
    ("{}", "window.out"): ("configurator",),
    ("{}", "order"): ("configurator",),
    ("{}", "same.second"): ("sale",),
    ("{}", "fin.minus7"): ("financed",),
    ("{}", "fin.minus8"): ("sale",),
    ("{}", "fin.plus30"): ("financed",),
    ("{}", "fin.plus31"): ("sale",),
    ("{}", "fin.later.sale"): ("sale",),
    ("{}", "before.period"): None,
    ('{"dimensions": ["model"]}', "tie"): ("configurator", "borealis"),
    ('{"dimensions": ["month"]}', "before.period"): None,
    ('{"dimensions": ["dealer_group"], "entry": "lead"}', "lead.tie"): ("lead", "northside-dealers"),
    ('{"dimensions": ["dealer_group"], "entry": "lead"}', "fin.minus7"): ("financed", "northside-dealers"),
    ('{"entry": "application"}', "app.same.day"): ("contract",),
    ('{"entry": "application"}', "app.day.before"): ("approved",),
    ('{"entry": "application"}', "app.window.in"): ("contract",),
    ('{"entry": "application"}', "app.window.out"): ("approved",),
    ('{"entry": "application"}', "app.declined.first"): ("contract",),
}
DEFAULTS = {
    "web_sessions": {"model": "cirrus", "channel": "search", "region": "north", "configurator_completed": "true"},
    "leads": {"dealer_id": "NS-01", "model": "cirrus", "region": "north", "source": "web"},
    "test_drives": {"dealer_id": "NS-01", "model": "cirrus", "region": "north"},
    "sales": {"dealer_id": "NS-01", "model": "cirrus", "region": "north", "price_band": "30-45k", "price_eur": "40000", "salesperson": "NS-01-S01"},
    "applications": {"product": "loan", "model": "cirrus", "amount_band": "20-35k", "decision": "approved"},
    "contracts": {"end_date": "2030-03-01", "product": "loan", "model": "cirrus", "amount_band": "20-35k", "amount_eur": "30000"},
}


def edge_key(person: str) -> str:
    return f"e:cohort.{person}@web.de"


def append_edges(raw_dir: Path, repo: Path) -> None:
    """Append the EDGES rows (and full consent at every partner) to the raw partner CSVs (made if missing)."""
    rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for n, (person, partner, dataset, fields) in enumerate(EDGES):
        ident = {"crm_id": f"EDGE-{n:06d}", "first_name": "Edge", "last_name": person, "email": edge_key(person)[2:], "phone": ""}
        rows[(partner, dataset)].append({**ident, **DEFAULTS[dataset], "dealer_id": "LA-01" if partner == LA else "NS-01", **fields})
    people = sorted({person for person, *_ in EDGES})
    for partner in (BRAND, NS, LA, FIN):
        for person in people:
            for purpose in ("measurement", "attribution", "analytics"):
                rows[(partner, "consent")].append({"crm_id": f"EDGE-{person}", "first_name": "Edge", "last_name": person,
                                                   "email": edge_key(person)[2:], "phone": "", "purpose": purpose,
                                                   "granted_at": "2021-01-01T00:00:00", "revoked_at": ""})
    partners = load_partners(repo / "partners")
    for (partner, dataset), new in rows.items():
        path = raw_dir / partner / f"{dataset}.csv"
        header = [*IDENTITY, *(c for c in partners[partner].datasets[dataset].columns if c != "hid")]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(",".join(header) + "\n", encoding="utf-8")
        with path.open(newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == header
        with path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=header).writerows({k: r.get(k, "") for k in header} for r in new)


def test_edge_persons_get_the_cells_the_definition_gives_them(raw: Raw) -> None:
    """The recomputation itself, on the edges: what the engine is compared with is the definition."""
    for params_json in dict.fromkeys(p for p, _ in EDGE_CELLS):
        params = json.loads(params_json)
        cells = furthest_by_person(raw, params, MAX_ROWS_PER_PERSON, financed_branch=params.get("entry") != "application")
        for (p, person), expected in EDGE_CELLS.items():
            if p == params_json:
                assert cells.get(edge_key(person)) == expected, (params_json, person)
    tight = furthest_by_person(raw, {"entry": "application"}, TIGHT_ROWS, financed_branch=False)
    assert tight[edge_key("app.declined.first")] == ("application",), "with 1 row per person only the declined application counts"


# --- the demo-sized data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_truth(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo-size") / "raw"
    generate(20_000, 7, out, partners_dir=repo / "partners")  # cleanroom demo's defaults
    return dict(json.loads((out / "ground_truth.json").read_text()))


def _blocks(cohort: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "overall", cohort["overall"]
    for dim, by in cohort["by"].items():
        for value, block in by["cells"].items():
            yield f"{dim}={value}", block


def test_demo_sized_stages_shrink_and_conversions_are_shares(demo_truth: dict[str, Any]) -> None:
    for entry, cohort in demo_truth["funnel"]["cohort"].items():
        stages: list[str] = cohort["stages"]
        steps = [s for s in stages if s != "financed"]
        assert cohort["overall"]["persons"][steps[-1]] > 0, entry
        for where, block in _blocks(cohort):
            persons = block["persons"]
            assert persons[stages[0]] == block["cohort"] == sum(block["furthest"].values()), (entry, where)
            for before, after in zip(steps, steps[1:], strict=False):
                assert persons[after] <= persons[before], (entry, where, after)
            if "financed" in stages:
                assert persons["financed"] <= persons["sale"], (entry, where)
                assert block["financed_share"] == block["conversion"]["financed"]
            for kind in ("conversion", "cumulative_conversion"):
                assert block[kind][stages[0]] is None
                for stage in stages[1:]:
                    value = block[kind][stage]
                    assert value is None or 0 <= value <= 1, (entry, where, kind, stage, value)
            if block["cohort"]:
                assert all(block["cumulative_conversion"][s] is not None for s in stages[1:])


# --- the ground truth's own code on the edges ---------------------------------------------------------------

ARROW_TYPES = {"timestamp": pa.timestamp("s"), "date": pa.date32(), "int64": pa.int64(), "bool": pa.bool_(), "string": pa.string()}


def truth_over(raw: Raw, max_rows: int) -> Truth:
    """cleanroom.synth.truth over the rows of ``raw``: typed business columns keyed by the identity."""
    keys = sorted({r["_key"] for rows in raw.rec.rows.values() for r in rows if r["_key"]})
    ikey = {k: i for i, k in enumerate(keys)}
    partners = load_partners(raw.repo / "partners")
    outputs = []
    for (partner, dataset), rows in sorted(raw.rec.rows.items()):
        columns = {n: c for n, c in partners[partner].datasets[dataset].columns.items() if n != "hid"}
        kept = [r for r in rows if r["_key"]]
        table = pa.table({n: pa.array([_typed(r[n], c.type) for r in kept], ARROW_TYPES[c.type]) for n, c in columns.items()})
        keyed = np.array([ikey[r["_key"]] for r in kept], dtype=np.int64)
        outputs.append(Output(partner, dataset, None, table, keyed, None, None))  # type: ignore[arg-type]
    roles = {pid: p.role for pid, p in partners.items()}
    return Truth(outputs, roles, Period.of(DEFAULT_END_DATE), max_rows_per_person=max_rows)


@pytest.mark.parametrize("max_rows", [MAX_ROWS_PER_PERSON, TIGHT_ROWS])
def test_ground_truth_code_matches_the_recomputation_on_the_edges(max_rows: int, tmp_path: Path, repo: Path) -> None:
    append_edges(tmp_path, repo)
    raw = Raw(tmp_path, repo)
    truth = truth_over(raw, max_rows)
    try:
        for entry, dims in COHORT_GROUPINGS.items():
            cohort = truth.cohort(entry, ("measurement",))
            fin = entry != "application"
            want = recompute(raw, {"entry": entry}, max_rows, fin)
            assert _truth_cells(cohort["overall"]) == {s: want.get((s,), 0) for s in cohort["stages"]}, entry
            for dim in dims:
                want = recompute(raw, {"entry": entry, "dimensions": [dim]}, max_rows, fin)
                for value, block in cohort["by"][dim]["cells"].items():
                    assert _truth_cells(block) == {s: want.get((s, value), 0) for s in cohort["stages"]}, (entry, dim, value)
    finally:
        truth.close()
