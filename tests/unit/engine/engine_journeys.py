"""Eight hand-made journeys whose true answers are worked out in tests/unit/engine/golden/*.json.

Consent: everyone grants every purpose at every partner, except
- person 7 revoked northside-dealers on 2026-06-01 (its northside lead must not count),
- person 8 never consented at the brand (its web session and touch must not count).
"""

from __future__ import annotations

from datetime import date, datetime

from engine_kit import PARTNERS, Tables


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ws(pid: int, at: str, model: str, channel: str, region: str, done: bool = True) -> dict[str, object]:
    return {"pid": pid, "session_at": ts(at), "model": model, "channel": channel, "region": region, "configurator_completed": done}


def touch(pid: int, at: str, campaign: str, channel: str) -> dict[str, object]:
    return {"pid": pid, "touched_at": ts(at), "campaign": campaign, "channel": channel}


def lead(pid: int, at: str, dealer: str, model: str, region: str, source: str) -> dict[str, object]:
    return {"pid": pid, "lead_at": ts(at), "dealer_id": dealer, "model": model, "region": region, "source": source}


def drive(pid: int, at: str, dealer: str, model: str, region: str) -> dict[str, object]:
    return {"pid": pid, "drive_at": ts(at), "dealer_id": dealer, "model": model, "region": region}


def sale(pid: int, at: str, dealer: str, model: str, region: str, band: str, price: int) -> dict[str, object]:
    return {"pid": pid, "sold_at": ts(at), "dealer_id": dealer, "model": model, "region": region, "price_band": band, "price_eur": price, "salesperson": "S1"}


def application(pid: int, at: str, product: str, model: str, band: str, decision: str) -> dict[str, object]:
    return {"pid": pid, "applied_at": ts(at), "product": product, "model": model, "amount_band": band, "decision": decision}


def contract(pid: int, start: str, end: str, product: str, model: str, band: str, amount: int) -> dict[str, object]:
    return {"pid": pid, "start_date": date.fromisoformat(start), "end_date": date.fromisoformat(end), "product": product, "model": model, "amount_band": band, "amount_eur": amount}


DATA: dict[str, list[dict[str, object]]] = {
    "aurora-motors.web_sessions": [
        ws(1, "2026-01-05 10:00", "aster", "search", "north"),
        ws(1, "2026-01-20 10:00", "borealis", "social", "north", False),
        ws(2, "2026-02-01 09:00", "cirrus", "email", "south"),
        ws(3, "2026-02-10 12:00", "aster", "search", "east"),
        ws(5, "2026-03-01 08:00", "zephyr", "direct", "west"),
        ws(6, "2026-09-01 08:00", "ember", "display", "central", False),
        ws(8, "2026-01-03 08:00", "aster", "search", "north"),
    ],
    "aurora-motors.campaign_touches": [
        touch(1, "2026-01-04 12:00", "spring_launch", "search"),
        touch(1, "2026-01-25 12:00", "autumn_ev", "email"),
        touch(1, "2026-02-03 12:00", "summer_drive", "social"),
        touch(2, "2026-02-02 12:00", "autumn_ev", "email"),
        touch(3, "2025-12-01 12:00", "spring_launch", "search"),
        touch(8, "2026-01-10 12:00", "spring_launch", "search"),
    ],
    "northside-dealers.leads": [
        lead(1, "2026-01-22 10:00", "NS-01", "aster", "north", "web"),
        lead(2, "2026-02-05 10:00", "NS-02", "cirrus", "south", "phone"),
        lead(7, "2026-01-15 10:00", "NS-01", "dune", "north", "walk_in"),
    ],
    "lakeside-autos.leads": [
        lead(3, "2026-02-12 10:00", "LA-01", "aster", "east", "web"),
        lead(1, "2026-01-21 10:00", "LA-02", "borealis", "north", "event"),
    ],
    "northside-dealers.test_drives": [
        drive(1, "2026-01-28 10:00", "NS-01", "aster", "north"),
        drive(2, "2026-02-06 10:00", "NS-02", "cirrus", "south"),
    ],
    "lakeside-autos.test_drives": [drive(3, "2026-02-20 10:00", "LA-01", "aster", "east")],
    "aurora-financial.applications": [
        application(1, "2026-02-01 10:00", "loan", "aster", "20-35k", "approved"),
        application(4, "2026-02-15 10:00", "lease", "dune", "35-50k", "declined"),
    ],
    "northside-dealers.sales": [
        sale(1, "2026-02-05 10:00", "NS-01", "aster", "north", "30-45k", 38000),
        sale(2, "2026-02-10 11:00", "NS-02", "cirrus", "south", "<30k", 27000),
    ],
    "lakeside-autos.sales": [
        sale(3, "2026-03-01 10:00", "LA-01", "aster", "east", "45-60k", 52000),
        sale(1, "2026-03-15 10:00", "LA-02", "borealis", "north", "30-45k", 41000),
    ],
    "aurora-financial.contracts": [
        contract(1, "2026-02-08", "2029-02-08", "loan", "aster", "20-35k", 30000),
        contract(3, "2026-04-15", "2027-04-15", "lease", "aster", "35-50k", 40000),
        contract(6, "2026-01-10", "2027-01-10", "balloon", "ember", "<20k", 15000),
    ],
}


def load(tables: Tables) -> Tables:
    """Fill ``tables`` with the journeys and the consent described in the module docstring."""
    for qualified, rows in DATA.items():
        tables.add(qualified, rows)
    for partner in PARTNERS:
        pids = [p for p in range(1, 9) if not (partner == "aurora-motors" and p == 8)]
        tables.consent(partner, [p for p in pids if not (partner == "northside-dealers" and p == 7)])
    tables.consent("northside-dealers", [7], revoked=datetime(2026, 6, 1))
    return tables
