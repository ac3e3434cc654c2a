"""The data is skewed the way a real car funnel is, and stays within the engine's per-person bounds."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

from _synth_recompute import Recomputed

from cleanroom.synth.domains import MAX_GROUPS_PER_PERSON, MODELS

DEALERS = ("northside-dealers", "lakeside-autos")
STAGE_DATASETS = {
    "configurator": (("aurora-motors", "web_sessions", "session_at"),),
    "lead": tuple((d, "leads", "lead_at") for d in DEALERS),
    "test_drive": tuple((d, "test_drives", "drive_at") for d in DEALERS),
    "application": (("aurora-financial", "applications", "applied_at"),),
    "sale": tuple((d, "sales", "sold_at") for d in DEALERS),
    "contract": (("aurora-financial", "contracts", "start_date"),),
}


def test_most_configurator_visitors_never_buy(truth: dict[str, Any]) -> None:
    overall = truth["funnel"]["stage_activity"]["overall"]
    assert overall["configurator"] > 5 * overall["sale"] > 0
    assert overall["lead"] > overall["test_drive"] > overall["sale"] / 2


def test_models_convert_differently(truth: dict[str, Any]) -> None:
    cells = truth["funnel"]["stage_activity"]["by"]["model"]["cells"]
    rates = [cells["sale"][m] / cells["configurator"][m] for m in MODELS]
    assert max(rates) > 1.3 * min(rates)
    volume = [cells["configurator"][m] for m in MODELS]
    assert max(volume) > 2.5 * min(volume)


def test_dealers_channels_and_campaigns_differ_in_volume(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    leads = Counter(r["dealer_id"] for d in DEALERS for r in recomputed.rows[(d, "leads")])
    assert max(leads.values()) > 2 * min(leads.values())
    channels = truth["funnel"]["stage_activity"]["by"]["channel"]["cells"]["configurator"]
    assert max(channels.values()) > 2 * min(channels.values())
    campaigns = Counter(r["campaign"] for r in recomputed.rows[("aurora-motors", "campaign_touches")])
    assert max(campaigns.values()) > 5 * min(campaigns.values())


def test_some_buyers_never_touched_a_campaign(truth: dict[str, Any]) -> None:
    attr = truth["attribution"]
    assert 0 < attr["unattributed"] < attr["sales"]
    assert 0 < attr["financed_sales"] < attr["sales"]


def test_persons_at_one_partner_and_rare_two_group_shoppers(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    spread = truth["identities"]["by_partner_count"]
    assert spread["1"] > spread["2"] > 0
    keys = {d: {r["_key"] for ds in ("leads", "test_drives", "sales") for r in recomputed.rows[(d, ds)] if r["_key"]} for d in DEALERS}
    both = keys[DEALERS[0]] & keys[DEALERS[1]]
    assert 0 < len(both) < 0.06 * len(keys[DEALERS[0]] | keys[DEALERS[1]])


def test_consent_granted_missing_and_revoked(recomputed: Recomputed) -> None:
    for partner in ("aurora-motors", *DEALERS, "aurora-financial"):
        consent = recomputed.rows[(partner, "consent")]
        assert any(r["revoked_at"] for r in consent), partner
        known = {r["_key"] for (p, ds), rows in recomputed.rows.items() if p == partner and ds != "consent" for r in rows if r["_key"]}
        assert known - recomputed.consent[partner]["measurement"], f"{partner}: someone lacks measurement consent"
        assert len(recomputed.consent[partner]["measurement"]) > len(recomputed.consent[partner]["analytics"])


def test_applications_partly_declined_and_old_contracts_feed_lifecycle(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    decisions = Counter(r["decision"] for r in recomputed.rows[("aurora-financial", "applications")])
    assert decisions["approved"] > decisions["declined"] > 0
    old = [r for r in recomputed.rows[("aurora-financial", "contracts")] if r["start_date"] < "2025-11-01"]
    assert min(r["start_date"] for r in old) < "2023-01-01"
    terms = {(date.fromisoformat(r["end_date"]).year - date.fromisoformat(r["start_date"]).year) * 12
             + date.fromisoformat(r["end_date"]).month - date.fromisoformat(r["start_date"]).month for r in old}
    assert terms == {24, 36, 48}
    total = truth["lifecycle"]["total"]
    assert total["contracts_ending"] > total["seen_again"] > 0


def test_no_person_needs_more_than_four_groups_per_stage(recomputed: Recomputed) -> None:
    for stage, sources in STAGE_DATASETS.items():
        groups: dict[tuple[str, str], set[str]] = defaultdict(set)
        for partner, dataset, time_column in sources:
            for r in recomputed.rows[(partner, dataset)]:
                if not r["_key"]:
                    continue
                groups[(r["_key"], "month")].add(r[time_column][:7])
                groups[(r["_key"], "dealer_group")].add(partner)
                for dim in ("model", "region", "channel"):
                    if dim in r:
                        groups[(r["_key"], dim)].add(r[dim])
        worst = max(len(v) for v in groups.values())
        assert worst <= MAX_GROUPS_PER_PERSON, stage
