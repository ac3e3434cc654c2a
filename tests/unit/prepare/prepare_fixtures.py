"""Raw partner folders written by the prepare tests themselves, with a known mix of good and bad identifiers.

Every person below has a known fate (keyed by email, by phone, or dropped with given reasons),
so the tests can check prepare's counts against numbers computed here, not by prepare.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from cleanroom.crypto import new_signing_key, public_key_text, write_signing_key
from cleanroom.partners import Partner, get_partner, set_public_key

ROWS_PER_PERSON = 3
PII_COLUMNS = ("email", "phone", "first_name", "last_name", "crm_id")
TEXT_VALUES = {
    "model": "aster",
    "region": "north",
    "dealer_id": "NS-01",
    "source": "web",
    "price_band": "30-45k",
    "channel": "search",
    "campaign": "spring_launch",
    "product": "loan",
    "amount_band": "<20k",
    "decision": "approved",
    "purpose": "measurement",
    "salesperson": "S-17",
}
TYPE_VALUES = {"timestamp": "2026-03-04T10:22:13", "date": "2026-03-04", "bool": "true", "int64": "31000"}


@dataclass(frozen=True)
class Person:
    """One raw person as a partner holds it, and what prepare must make of it."""

    email: str | None
    phone: str | None
    first_name: str
    kind: str | None  # "email", "phone" or None (dropped)
    email_reason: str | None = None
    phone_reason: str | None = None  # only meaningful when the email failed
    normalized: str | None = None  # what gets keyed, for the expected hid


def _people() -> list[Person]:
    people: list[Person] = []
    for k in range(30):
        people.append(Person(f"  Person.{k}+Car@Example.COM ", f"030 12340{k:02d}", f"Anna{k}", "email", normalized=f"person.{k}+car@example.com"))
    for k in range(10):
        people.append(Person(f"jörg.{k}@Bücher.DE", None, f"Jörg{k}", "email", normalized=f"jörg.{k}@xn--bcher-kva.de"))
    for k in range(10):
        phone = [f"030 12341{k:02d}", f"(030) 12341-{k:02d}", f"+49 30 12341{k:02d}", f"0049 30 12341{k:02d}"][k % 4]
        people.append(Person(None, phone, f"Ben{k}", "phone", "empty", normalized=f"+493012341{k:02d}"))
    for k in range(5):
        people.append(Person(f"broken{k}@", f"0151 2345{k:04d}", f"Cem{k}", "phone", "bad_domain", normalized=f"+491512345{k:04d}"))
    for k in range(5):
        people.append(Person("n/a", "12345", f"Dora{k}", None, "no_at", "invalid_number"))
    for k in range(4):
        people.append(Person(f"john doe{k}@example.com", "", f"John{k}", None, "bad_local", "empty"))
    for k in range(3):
        people.append(Person(f"x{k}@localhost", "abc", f"Eve{k}", None, "bad_domain", "unparseable"))
    for k in range(3):
        people.append(Person(f"y{k}@foo_bar.com", None, f"Fay{k}", None, "bad_domain", "empty"))
    return people


PEOPLE = _people()
# Persons both dealer groups hold, written differently at the second one.
SHARED = [
    Person("Max.Mueller@Straße.de", None, "Max", "email", normalized="max.mueller@xn--strae-oqa.de"),
    Person(None, "+49 30 1239999", "Mia", "phone", "empty", normalized="+49301239999"),
]
SHARED_AT_LAKESIDE = [
    Person(" max.mueller@xn--strae-oqa.de", "n/a", "Max", "email", normalized="max.mueller@xn--strae-oqa.de"),
    Person("", "030-123 9999", "Mia", "phone", "empty", normalized="+49301239999"),
]


def expected_hid(salt: bytes, person: Person) -> str:
    """The hid computed independently with the standard library, from the documented construction."""
    assert person.kind is not None and person.normalized is not None
    return hmac.new(salt, f"{person.kind}:{person.normalized}".encode(), hashlib.sha256).hexdigest()


def _value(name: str, column_type: str, nullable: bool, row: int) -> str:
    if nullable and row % 2:
        return ""
    return TEXT_VALUES.get(name, "x") if column_type == "string" else TYPE_VALUES[column_type]


def write_raw(folder: Path, partner: Partner, people: list[Person]) -> None:
    """One CSV per declared dataset, PII columns first (order must not matter), each person 3 rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, dataset in partner.datasets.items():
        business = [c for c in dataset.columns if c != "hid"]
        with (folder / f"{name}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*PII_COLUMNS, *business])
            for row in range(ROWS_PER_PERSON * len(people)):
                p = people[row % len(people)]
                pii = [p.email or "", p.phone or "", p.first_name, "Schmidt", f"CRM-{row:06d}"]
                writer.writerow([*pii, *(_value(c, dataset.columns[c].type, dataset.columns[c].nullable, row) for c in business)])


@dataclass(frozen=True)
class Workspace:
    partners_dir: Path
    raw: Path
    salt: bytes
    keys: dict[str, Path]


@pytest.fixture()
def workspace(tmp_path: Path, partners_dir: Path) -> Workspace:
    """Fresh uploader keys for both dealer groups, a salt, and a raw folder with both of them."""
    keys: dict[str, Path] = {}
    for pid in ("northside-dealers", "lakeside-autos"):
        key = new_signing_key()
        keys[pid] = tmp_path / f"{pid}.pem"
        write_signing_key(keys[pid], key)
        set_public_key(partners_dir, pid, "uploader", public_key_text(key))
    raw = tmp_path / "raw"
    write_raw(raw / "northside-dealers", get_partner(partners_dir, "northside-dealers"), PEOPLE + SHARED)
    write_raw(raw / "lakeside-autos", get_partner(partners_dir, "lakeside-autos"), SHARED_AT_LAKESIDE + PEOPLE[:5])
    return Workspace(partners_dir=partners_dir, raw=raw, salt=os.urandom(32), keys=keys)
