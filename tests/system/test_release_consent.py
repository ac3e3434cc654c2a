"""Consent and thresholds on data the test wrote itself, at an epsilon so large that noise vanishes.

A tiny collaboration of hand-written raw CSVs (42 persons, real prepare/keys/ingest/signatures),
whose policy copy raises the per-query cap to epsilon 1000 BEFORE every partner signs. At that
epsilon the funnel's persons part has scale 6/1000, so the released counts are the exact counts
(the reported 95% interval is far below one person) and single persons become visible in tests:

- consent is per partner: person 29 (brand consent only) counts at the brand's stage but not at
  Northside's; person 39 (Northside consent only) the other way round;
- revoking one person's ``measurement`` consent (a new consent upload over HTTP) removes exactly
  that person from the next query, and only from the revoking partner's stage; a revocation
  dated a few seconds ahead takes effect once its time has come, cache or not;
- the brand's own threshold (25) binds queries over brand data, the policy's (20) the rest.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import LiveGateway, bearer
from collab import COLLABORATION, IDENTITY_HEADER, Collab, build_collab, records, serve, write_csv

from cleanroom.client import Client
from cleanroom.partners import load_partners

BRAND, NORTH, LAKE, FIN = "aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial"
EPSILON = 1000
POLICY = {"privacy": {"max_epsilon_per_query": EPSILON, "monthly_budget_per_partner": 100_000, "collaboration_monthly_cap": 400_000}}
FUNNEL = {"view": "activity"}  # stage counts: each partner's rows with its own consent

# Who has rows where (person numbers). Consent: each partner's own consent dataset.
ROWS: dict[tuple[str, str], list[int]] = {
    (BRAND, "web_sessions"): list(range(40)),
    (BRAND, "campaign_touches"): list(range(40)),
    (BRAND, "consent"): list(range(39)),                           # 0..38: not 39
    (NORTH, "leads"): [*range(30), 39],                            # 0..29 and 39
    (NORTH, "test_drives"): list(range(21)),                       # 21 persons: between the thresholds 20 and 25
    (NORTH, "sales"): list(range(10)),
    (NORTH, "consent"): [*range(29), 39],                          # 0..28 and 39: not 29
    (LAKE, "leads"): [40, 41, 42],
    (LAKE, "test_drives"): [40, 41, 42],
    (LAKE, "sales"): [40, 41, 42],
    (LAKE, "consent"): [40, 41, 42],
    (FIN, "applications"): list(range(5)),
    (FIN, "contracts"): list(range(5)),
    (FIN, "consent"): list(range(5)),
}
# What the funnel must count: persons with a row AND that partner's measurement consent.
CONFIGURATOR = 39          # web_sessions 0..39 with brand consent 0..38
LEADS = 29 + 1 + 3         # Northside 0..28 and 39 (not 29), Lakeside 40..42
TEST_DRIVES = 21 + 3       # 24 < 25: suppressed in a query over brand data
REVOKED = 25               # has a Northside lead, no test drive; revokes Northside measurement consent
FUTURE_REVOKED = 26        # the same, with a revocation dated a few seconds ahead

VALUES: dict[str, str] = {
    "model": "aster", "channel": "search", "region": "north", "configurator_completed": "true", "campaign": "spring_launch",
    "source": "web", "price_band": "30-45k", "price_eur": "41000", "salesperson": "S-01", "product": "loan",
    "amount_band": "20-35k", "decision": "approved", "amount_eur": "30000", "start_date": "2026-03-20",
    "end_date": "2030-03-20", "granted_at": "2025-01-01T00:00:00", "revoked_at": "", "purpose": "measurement",
}


def _value(column: str, partner: str) -> str:
    if column == "dealer_id":
        return "NS-01" if partner == NORTH else "LA-01"
    if column.endswith("_at"):
        return VALUES.get(column, "2026-03-10T10:00:00")
    return VALUES[column]


def _raw_writer(partners_dir: Path) -> Any:
    """Write every partner's raw CSVs from ROWS, columns as the partner files declare them."""

    def write(raw: Path) -> None:
        for pid, partner in load_partners(partners_dir).items():
            for name, dataset in partner.datasets.items():
                columns = [c for c in dataset.columns if c != "hid"]
                persons = ROWS[(pid, name)]
                rows = [[f"{pid[:3].upper()}-{i:08d}", "Test", f"Person{i}", f"person{i:02d}@example.org", "", *_row(columns, pid)]
                        for i in persons]
                write_csv(raw / pid / f"{name}.csv", IDENTITY_HEADER + columns, rows)

    return write


def _row(columns: list[str], pid: str) -> list[str]:
    return [_value(c, pid) for c in columns]


def _revoke(raw_csv: Path, person: int, when: datetime) -> None:
    """Set revoked_at on one person's measurement consent row (the partner's CRM export changes)."""
    with raw_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    email = f"person{person:02d}@example.org"
    hits = [r for r in rows if r["email"] == email and r["purpose"] == "measurement"]
    assert len(hits) == 1
    hits[0]["revoked_at"] = when.strftime("%Y-%m-%dT%H:%M:%S")
    write_csv(raw_csv, list(rows[0]), [list(r.values()) for r in rows])


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Collab:
    root = tmp_path_factory.mktemp("consent")
    return build_collab(root / "collab", repo, write_raw=_raw_writer(repo / "partners"), policy_overrides=POLICY)


@pytest.fixture(scope="module")
def gateway(collab: Collab) -> Iterator[LiveGateway]:
    with serve(collab.config()) as live:
        yield live


@pytest.fixture(scope="module")
def initial(collab: Collab, gateway: LiveGateway) -> dict[str, dict[str, Any]]:
    """The funnel before any revocation (whichever test asks first)."""
    return _funnel(gateway, collab.mint(NORTH, "analyst"))


def _funnel(gateway: LiveGateway, key: str, epsilon: float = EPSILON) -> dict[str, dict[str, Any]]:
    response = httpx.post(f"{gateway.url}/v1/queries", headers=bearer(key), timeout=60,
                          json={"collaboration": COLLABORATION, "template": "funnel", "params": FUNNEL, "epsilon": epsilon})
    assert response.status_code == 200, response.text
    return {r["stage"]: r for r in records(response.json())}


def _half_width(row: dict[str, Any], column: str) -> float:
    low, high = row[f"{column}_ci95"]
    return float(high - low) / 2


def _near(row: dict[str, Any], expected: int) -> bool:
    return row["persons"] is not None and abs(row["persons"] - expected) <= max(_half_width(row, "persons"), 0.0)


def test_each_partner_consent_licenses_only_its_own_rows(initial: dict[str, dict[str, Any]]) -> None:
    stages = initial
    assert _half_width(stages["configurator"], "persons") < 0.5, "epsilon 1000 must make the noise negligible"
    assert _near(stages["configurator"], CONFIGURATOR), stages["configurator"]   # 40 visitors, 39 with brand consent
    assert _near(stages["lead"], LEADS), stages["lead"]                          # 34 with leads, 33 with dealer consent


def _upload_consent(collab: Collab, gateway: LiveGateway, tag: str) -> int:
    """Northside re-prepares its consent export and uploads it over HTTP; returns the new version."""
    pair = collab.reprepare(NORTH, tag)["consent"]
    with Client(gateway.url, collab.mint(NORTH, "uploader")) as uploader:
        return uploader.upload("consent", pair.arrow, pair.manifest).version


def test_revoking_consent_removes_exactly_that_person_on_the_next_query(
    collab: Collab, gateway: LiveGateway, initial: dict[str, dict[str, Any]]  # `initial`: taken before any revocation
) -> None:
    analyst = collab.mint(BRAND, "analyst")
    before = _funnel(gateway, analyst, epsilon=999)
    _revoke(collab.raw / NORTH / "consent.csv", REVOKED, datetime.now(UTC) - timedelta(hours=1))
    assert _upload_consent(collab, gateway, "revoked") > 1
    after = _funnel(gateway, analyst, epsilon=999)  # the same question: the new consent version is a new release
    assert round(before["lead"]["persons"]) - round(after["lead"]["persons"]) == 1
    assert _half_width(after["lead"], "persons") < 0.5
    assert round(after["configurator"]["persons"]) == round(before["configurator"]["persons"]) == CONFIGURATOR  # the brand's consent is its own


def test_a_revocation_dated_later_takes_effect_when_its_time_comes(
    collab: Collab, gateway: LiveGateway, initial: dict[str, dict[str, Any]]  # `initial`: taken before any revocation
) -> None:
    """No upload in between: the same question asked before and after the revocation time gets two answers."""
    analyst = collab.mint(BRAND, "analyst")
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    _revoke(collab.raw / NORTH / "consent.csv", FUTURE_REVOKED, when)
    _upload_consent(collab, gateway, "future")
    before = _funnel(gateway, analyst, epsilon=997)
    assert _funnel(gateway, analyst, epsilon=997) == before, "until then: the cached release"
    time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 1.0)
    after = _funnel(gateway, analyst, epsilon=997)
    assert round(before["lead"]["persons"]) - round(after["lead"]["persons"]) == 1


def test_brand_threshold_binds_brand_data_policy_threshold_the_rest(collab: Collab, gateway: LiveGateway) -> None:
    """21 Northside test drivers: released by an overlap over dealer data only (threshold 20), suppressed
    as soon as the query reads brand data (aurora-motors' own min_threshold 25), funnel included."""
    key = collab.mint(NORTH, "analyst")

    def overlap(a: str, b: str) -> dict[str, Any]:
        body = {"collaboration": COLLABORATION, "template": "overlap", "params": {"datasets": [a, b]}, "epsilon": EPSILON}
        response = httpx.post(f"{gateway.url}/v1/queries", headers=bearer(key), json=body, timeout=60)
        assert response.status_code == 200, response.text
        return records(response.json())[0]

    dealers_only = overlap("northside-dealers.leads", "northside-dealers.test_drives")
    with_brand = overlap("aurora-motors.web_sessions", "northside-dealers.test_drives")
    assert round(dealers_only["persons_b"]) == 21 and round(dealers_only["shared"]) == 21
    assert with_brand["persons_b"] is None and with_brand["shared"] is None and round(with_brand["persons_a"]) == CONFIGURATOR
    assert _funnel(gateway, key, epsilon=998)["test_drive"]["persons"] is None  # 24 persons, brand data in the query
