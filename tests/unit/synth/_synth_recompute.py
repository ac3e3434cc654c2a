"""An independent pure-Python reader of a synthetic run, for the synth tests.

It never imports the generator's internals: it parses the raw CSVs with the csv module,
normalizes identifiers itself (``idna`` + ``phonenumbers``) and keys each row by the identity rule,
so the ground-truth checks recompute numbers along a different path than the generator's DuckDB.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import idna
import phonenumbers


def norm_email(raw: str) -> str | None:
    text = raw.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    try:
        return f"{local}@{idna.encode(domain).decode('ascii')}"
    except idna.IDNAError:
        return None


def norm_phone(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw.strip(), "DE")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def row_key(row: dict[str, str]) -> str | None:
    """The identity rule: normalized email where valid, else normalized phone, else none."""
    email = norm_email(row["email"])
    if email:
        return "e:" + email
    phone = norm_phone(row["phone"])
    return "p:" + phone if phone else None


@dataclass
class Recomputed:
    """Every CSV row with its identity key, and each partner's active consent by purpose."""

    rows: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    consent: dict[str, dict[str, set[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))

    def consented(self, partner: str, dataset: str, purposes: tuple[str, ...]) -> list[dict[str, str]]:
        ok = set.intersection(*(self.consent[partner][p] for p in purposes))
        return [r for r in self.rows[(partner, dataset)] if r["_key"] in ok]

    def role_rows(self, partners: list[str], dataset: str, purposes: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
        return [(p, r) for p in partners if (p, dataset) in self.rows for r in self.consented(p, dataset, purposes)]


def read_run(out: Path) -> Recomputed:
    """Every CSV of a run with identity keys, and each partner's active consent."""
    data = Recomputed()
    for path in sorted(out.glob("*/*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            r["_key"] = row_key(r)  # type: ignore[assignment]
        data.rows[(path.parent.name, path.stem)] = rows
    for (partner, dataset), rows in data.rows.items():
        if dataset == "consent":
            for r in rows:
                if r["_key"] and not r["revoked_at"]:
                    data.consent[partner][r["purpose"]].add(r["_key"])
    return data
