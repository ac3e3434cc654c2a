"""Ground truth recomputed independently, in pure Python over the raw CSVs.

The generator computes truth in DuckDB on identity keys it assigned by construction; here every
number is rebuilt from the written files with our own normalization (idna + phonenumbers), the
identity rule and each partner's own consent. Any disagreement is a bug in one of the two paths.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from _synth_recompute import Recomputed, norm_email, norm_phone

from cleanroom.synth.domains import DEALER_GROUPS, MODELS, months

MEASUREMENT = ("measurement",)
ATTRIBUTION = ("measurement", "attribution")
BRAND, FINANCE = "aurora-motors", "aurora-financial"
DEALERS = list(DEALER_GROUPS)
STAGES = {
    "configurator": ([BRAND], "web_sessions", "session_at"),
    "lead": (DEALERS, "leads", "lead_at"),
    "test_drive": (DEALERS, "test_drives", "drive_at"),
    "application": ([FINANCE], "applications", "applied_at"),
    "sale": (DEALERS, "sales", "sold_at"),
    "contract": ([FINANCE], "contracts", "start_date"),
}


def _stage_rows(rec: Recomputed, stage: str) -> list[tuple[str, dict[str, str]]]:
    partners, dataset, _ = STAGES[stage]
    return rec.role_rows(partners, dataset, MEASUREMENT)


def test_prepare_summary_matches_the_files(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    for (partner, dataset), rows in recomputed.rows.items():
        expected = truth["prepare"][partner][dataset]
        by_email = sum(1 for r in rows if norm_email(r["email"]))
        by_phone = sum(1 for r in rows if not norm_email(r["email"]) and norm_phone(r["phone"]))
        assert expected["rows"] == len(rows), (partner, dataset)
        assert (expected["keyed_by_email"], expected["keyed_by_phone"]) == (by_email, by_phone), (partner, dataset)
        assert expected["rows_without_identity"] == len(rows) - by_email - by_phone
        assert sum(expected["phone_unmatched"].values()) == expected["rows_without_identity"]
        assert sum(expected["email_unmatched"].values()) == len(rows) - by_email


def test_funnel_stage_counts(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    for stage in STAGES:
        persons = {r["_key"] for _, r in _stage_rows(recomputed, stage)}
        assert truth["funnel"]["stage_activity"]["overall"][stage] == len(persons), stage


def test_funnel_by_model_and_month_cover_the_domain(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    by_model: dict[str, set[str]] = defaultdict(set)
    for _, r in _stage_rows(recomputed, "sale"):
        by_model[r["model"]].add(r["_key"])
    assert truth["funnel"]["stage_activity"]["by"]["model"]["cells"]["sale"] == {m: len(by_model[m]) for m in MODELS}
    by_month: dict[str, set[str]] = defaultdict(set)
    for _, r in _stage_rows(recomputed, "configurator"):
        by_month[r["session_at"][:7]].add(r["_key"])
    assert truth["funnel"]["stage_activity"]["by"]["month"]["cells"]["configurator"] == {m: len(by_month[m]) for m in months()}


def test_funnel_by_dealer_group_and_omitted_stages(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    by = truth["funnel"]["stage_activity"]["by"]["dealer_group"]
    assert by["stages_omitted"] == ["configurator", "application", "contract"]
    for group in DEALERS:
        leads = {r["_key"] for p, r in _stage_rows(recomputed, "lead") if p == group}
        assert by["cells"]["lead"][group] == len(leads)
    assert truth["funnel"]["stage_activity"]["by"]["channel"]["stages_omitted"] == ["lead", "test_drive", "application", "sale", "contract"]


def _first_day(rows: list[tuple[str, dict[str, str]]], column: str) -> dict[str, date]:
    first: dict[str, date] = {}
    for _, r in rows:
        d = date.fromisoformat(r[column][:10])
        first[r["_key"]] = min(first.get(r["_key"], d), d)
    return first


def test_median_days_between_stages(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    for earlier, later in (("configurator", "lead"), ("test_drive", "application"), ("sale", "contract")):
        a = _first_day(_stage_rows(recomputed, earlier), STAGES[earlier][2])
        b = _first_day(_stage_rows(recomputed, later), STAGES[later][2])
        days = sorted(min((b[k] - a[k]).days, 365) for k in a.keys() & b.keys() if b[k] >= a[k])
        got = truth["funnel"]["stage_activity"]["median_days"][f"{earlier}->{later}"]
        assert got["persons"] == len(days)
        assert got["median"] == statistics.median(days)
        assert (got["median_low"], got["median_high"]) == (statistics.median_low(days), statistics.median_high(days))


def _attribution_inputs(rec: Recomputed) -> tuple[dict[str, datetime], dict[str, bool], dict[str, list[tuple[datetime, str, str]]]]:
    sold: dict[str, datetime] = {}
    for _, r in rec.role_rows(DEALERS, "sales", ATTRIBUTION):
        t = datetime.fromisoformat(r["sold_at"])
        sold[r["_key"]] = min(sold.get(r["_key"], t), t)
    starts: dict[str, list[date]] = defaultdict(list)
    for _, r in rec.role_rows([FINANCE], "contracts", ATTRIBUTION):
        starts[r["_key"]].append(date.fromisoformat(r["start_date"]))
    financed = {k: any(t.date() - timedelta(7) <= d <= t.date() + timedelta(30) for d in starts[k]) for k, t in sold.items()}
    touches: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for _, r in rec.role_rows([BRAND], "campaign_touches", ATTRIBUTION):
        t = datetime.fromisoformat(r["touched_at"])
        if r["_key"] in sold and sold[r["_key"]] - timedelta(days=30) <= t <= sold[r["_key"]]:
            touches[r["_key"]].append((t, r["campaign"], r["channel"]))
    return sold, financed, {k: sorted(v)[-10:] for k, v in touches.items()}


def test_attribution_last_touch_and_linear(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    sold, financed, touches = _attribution_inputs(recomputed)
    last: Counter[str] = Counter()
    last_financed: Counter[str] = Counter()
    linear: Counter[str] = Counter()
    for key, ts in touches.items():
        last[ts[-1][1]] += 1000
        last_financed[ts[-1][1]] += 1000 if financed[key] else 0
        n = len(ts)
        for i, (_, _, channel) in enumerate(ts):
            linear[channel] += 1000 // n if i < n - 1 else 1000 - (n - 1) * (1000 // n)
    attr = truth["attribution"]
    assert (attr["sales"], attr["financed_sales"]) == (len(sold), sum(financed.values()))
    assert attr["unattributed"] == len(sold) - len(touches) > 0
    for campaign, cell in attr["by"]["campaign"]["last_touch"].items():
        assert round(cell["credited_sales"] * 1000) == last[campaign], campaign
        assert round(cell["credited_financed_sales"] * 1000) == last_financed[campaign], campaign
    for channel, cell in attr["by"]["channel"]["linear"].items():
        assert round(cell["credited_sales"] * 1000) == linear[channel], channel


def test_every_credit_model_hands_out_one_credit_per_attributed_sale(truth: dict[str, Any]) -> None:
    attr = truth["attribution"]
    for dim in ("campaign", "channel"):
        for model, cells in attr["by"][dim].items():
            total = sum(c["credited_sales"] for c in cells.values())
            assert round(total * 1000) == (attr["sales"] - attr["unattributed"]) * 1000, (dim, model)


def test_overlap_pairs(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    pairs = {(p["a"], p["b"]): p for p in truth["overlap"]["pairs"]}
    business = sorted(f"{p}.{d}" for p, d in recomputed.rows if d != "consent")
    assert list(pairs) == [(a, b) for i, a in enumerate(business) for b in business[i + 1 :]], "every pair, names sorted"
    a = {r["_key"] for r in recomputed.consented(BRAND, "web_sessions", MEASUREMENT)}
    b = {r["_key"] for r in recomputed.consented("northside-dealers", "leads", MEASUREMENT)}
    got = pairs[(f"{BRAND}.web_sessions", "northside-dealers.leads")]
    assert (got["persons_a"], got["persons_b"], got["shared"]) == (len(a), len(b), len(a & b))
    assert got["venn"] == {"a_only": len(a - b), "b_only": len(b - a), "both": len(a & b)}


def test_lifecycle_contracts_ending_and_seen_again(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    """Each person once, in the product of its earliest contract ending in the window (ties: domain order)."""
    window = (date(2026, 11, 1), date(2027, 1, 31))
    products = ["loan", "lease", "balloon"]
    activity: dict[str, list[datetime]] = defaultdict(list)
    for partners, dataset, column in (([BRAND], "web_sessions", "session_at"), (DEALERS, "leads", "lead_at"), (DEALERS, "test_drives", "drive_at")):
        for _, r in recomputed.role_rows(partners, dataset, MEASUREMENT):
            activity[r["_key"]].append(datetime.fromisoformat(r[column]))
    earliest: dict[str, tuple[date, int]] = {}
    for r in recomputed.consented(FINANCE, "contracts", MEASUREMENT):
        end = date.fromisoformat(r["end_date"])
        if window[0] <= end <= window[1]:
            earliest[r["_key"]] = min(earliest.get(r["_key"], (end, 9)), (end, products.index(r["product"])))
    cells = {p: {"contracts_ending": 0, "seen_again": 0, "not_seen": 0} for p in products}
    for key, (end, product) in earliest.items():
        since = datetime.combine(end, datetime.min.time()) - timedelta(days=180)
        seen = any(t >= since for t in activity[key])
        cells[products[product]]["contracts_ending"] += 1
        cells[products[product]]["seen_again" if seen else "not_seen"] += 1
    life = truth["lifecycle"]
    assert life["window"] == {"start": "2026-11-01", "end": "2027-01-31"}
    assert life["by"]["product"] == cells
    assert life["total"]["contracts_ending"] == len(earliest) > 0
    assert life["total"]["seen_again"] == sum(c["seen_again"] for c in cells.values()) > 0


def test_attribution_credit_by_financing_and_month(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    """The engine's credit partition: (campaign or unattributed) x financing, overall and by the sale's month."""
    sold, financed, touches = _attribution_inputs(recomputed)
    cells: Counter[tuple[str, str, str]] = Counter()
    for key, t in sold.items():
        target = touches[key][-1][1] if touches.get(key) else "unattributed"
        cells[(t.strftime("%Y-%m"), target, "financed" if financed[key] else "not_financed")] += 1000
    attr = truth["attribution"]
    for campaign, split in attr["credit"]["campaign"]["last_touch"].items():
        for financing, value in split.items():
            assert round(value * 1000) == sum(n for (_, c, f), n in cells.items() if (c, f) == (campaign, financing)), (campaign, financing)
    for month, m in attr["by_month"].items():
        assert m["sales"] == sum(1 for t in sold.values() if t.strftime("%Y-%m") == month)
        for campaign, split in m["credit"]["campaign"]["last_touch"].items():
            assert {f: round(v * 1000) for f, v in split.items()} == {f: cells[(month, campaign, f)] for f in split}, (month, campaign)
    assert sum(m["sales"] for m in attr["by_month"].values()) == attr["sales"]
    for model in attr["credit"]["channel"]:
        total = sum(sum(split.values()) for split in attr["credit"]["channel"][model].values())
        assert round(total * 1000) == attr["sales"] * 1000, model
