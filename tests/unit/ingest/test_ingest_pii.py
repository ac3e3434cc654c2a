"""Raw-PII sniffing: catches emails, phones and names, and leaves every public domain alone."""

from __future__ import annotations

import pyarrow as pa
import pytest
from faker import Faker

from cleanroom.ingest import _pii

PUBLIC_DOMAINS = {
    "model": ["aster", "borealis", "cirrus", "dune", "ember", "fjord"],
    "region": ["north", "south", "east", "west", "central"],
    "channel": ["search", "social", "display", "email", "direct", "video"],
    "campaign": ["spring_launch", "summer_drive", "autumn_ev", "winter_service", "loyalty_upgrade", "fleet_offer", "ev_test_week", "brand_always_on"],
    "source": ["web", "walk_in", "phone", "event"],
    "dealer_id": [f"NS-0{i}" for i in range(1, 7)] + [f"LA-0{i}" for i in range(1, 5)],
    "price_band": ["<30k", "30-45k", "45-60k", "60k+"],
    "amount_band": ["<20k", "20-35k", "35-50k", "50k+"],
    "product": ["loan", "lease", "balloon"],
    "decision": ["approved", "declined"],
    "purpose": ["measurement", "attribution", "analytics"],
    "month": [f"2025-{m:02d}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)],
    "salesperson": [f"S-{i:03d}" for i in range(40)],
}


@pytest.mark.parametrize("column", sorted(PUBLIC_DOMAINS))
def test_public_domains_are_not_pii(column: str) -> None:
    values = [PUBLIC_DOMAINS[column][i % len(PUBLIC_DOMAINS[column])] for i in range(3000)]
    assert _pii.detect(_pii.sample_values(pa.array(values))) is None


def _faker_column(kind: str, n: int = 3000) -> pa.Array:
    fake = Faker("de_DE")
    fake.seed_instance(7)
    make = {"email": fake.email, "phone": fake.phone_number, "name": fake.name, "first": fake.first_name, "last": fake.last_name}[kind]
    return pa.array([make() for _ in range(n)])


@pytest.mark.parametrize(("kind", "expected"), [("email", "email"), ("phone", "phone"), ("name", "name"), ("first", "name"), ("last", "name")])
def test_raw_pii_is_detected(kind: str, expected: str) -> None:
    found = _pii.detect(_pii.sample_values(_faker_column(kind)))
    assert found is not None and found[0] == expected


def test_english_names_and_e164_phones() -> None:
    fake = Faker("en_US")
    fake.seed_instance(3)
    assert _pii.detect([fake.name() for _ in range(500)])[0] == "name"  # type: ignore[index]
    assert _pii.detect([f"+4917{i:08d}" for i in range(500)])[0] == "phone"  # type: ignore[index]


def test_one_email_is_enough_and_dates_are_not_phones() -> None:
    assert _pii.detect(["web"] * 1999 + ["a.b@example.com"]) == ("email", "1 of 2000 sampled values look like email addresses")
    assert _pii.detect([f"2026-01-{d:02d}" for d in range(1, 29)]) is None


def test_sample_is_bounded_and_spread() -> None:
    values = pa.array([f"v{i}" for i in range(100_000)])
    sample = _pii.sample_values(values)
    assert len(sample) == _pii.SAMPLE
    assert sample[0] == "v0" and sample[-1] == "v99999"
    assert _pii.sample_values(pa.array([None, "", " x "], pa.string())) == ["x"]
