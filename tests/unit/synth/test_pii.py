"""Raw identifiers are messy the way real partner data is, and consistent per person and partner."""

from __future__ import annotations

import re
from collections import defaultdict

from _synth_recompute import Recomputed, norm_email, norm_phone

ALL = ("aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial")


def _values(rec: Recomputed, column: str, partners: tuple[str, ...] = ALL) -> list[str]:
    return [r[column] for (p, _), rows in rec.rows.items() if p in partners for r in rows]


def test_emails_are_messy_but_normalizable(recomputed: Recomputed) -> None:
    emails = [e for e in _values(recomputed, "email") if e]
    assert any(e != e.strip() for e in emails), "leading/trailing spaces"
    assert any(e.strip() != e.strip().lower() and norm_email(e) for e in emails), "mixed case"
    assert any("+" in (norm_email(e) or "") for e in emails), "plus tags are kept"
    assert any(norm_email(e) and "." in (norm_email(e) or "").split("@")[0] for e in emails)


def test_unusable_emails_of_every_kind(recomputed: Recomputed) -> None:
    raw = _values(recomputed, "email")
    invalid = [e for e in raw if not norm_email(e)]
    assert "" in invalid
    assert any(e.strip().lower() == "n/a" for e in invalid)
    assert any("@" not in e and "." in e and e.strip().lower() != "n/a" for e in invalid), "missing @"
    assert any(e.strip().endswith("@") for e in invalid), "empty domain"
    assert any(".." in e.split("@")[-1] for e in invalid if "@" in e), "broken domain"


def test_idn_domains_in_unicode_at_one_partner_and_punycode_at_another(recomputed: Recomputed) -> None:
    written: dict[str, set[str]] = defaultdict(set)
    for (partner, _), rows in recomputed.rows.items():
        for r in rows:
            email = norm_email(r["email"])
            if email and "xn--" in email:
                form = "punycode" if "xn--" in r["email"].lower() else "unicode"
                written[email].add(f"{partner}:{form}")
    both = [forms for forms in written.values() if {f.split(":")[1] for f in forms} == {"unicode", "punycode"}]
    assert both, "an IDN address written both ways (same person, same normalized key)"


def test_phones_in_national_international_and_foreign_formats(recomputed: Recomputed) -> None:
    phones = [p for p in _values(recomputed, "phone") if p]
    patterns = {
        "national": r"^0\d{2,4} \d{6,8}$",
        "parenthesized": r"^\(0\d{2,4}\) \d{3}-\d{3,5}$",
        "international": r"^\+49 \d{2,3} \d{6,8}$",
        "international 00": r"^0049 \d{2,3} \d{6,8}$",
        "foreign": r"^\+(43|41|48|39|90)",
    }
    for name, pattern in patterns.items():
        matching = [p for p in phones if re.match(pattern, p)]
        assert matching, name
        assert all(norm_phone(p) for p in matching), f"{name} numbers are valid for phonenumbers"
    assert {"n/a", "12345"} <= set(phones)
    assert not norm_phone("12345") and not norm_phone("n/a")


def test_some_rows_carry_only_a_phone(recomputed: Recomputed) -> None:
    leads = recomputed.rows[("northside-dealers", "leads")]
    only = [r for r in leads if not r["email"] and norm_phone(r["phone"])]
    assert only and all(r["_key"].startswith("p:") for r in only)
    assert any(r["source"] == "phone" for r in only)


def test_one_crm_record_per_person_and_partner(recomputed: Recomputed) -> None:
    """A partner exports the same raw identifiers on every row of a customer (phone-only rows aside)."""
    for (partner, dataset), rows in recomputed.rows.items():
        seen: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        for r in rows:
            if r["email"]:
                seen[r["crm_id"]].add((r["email"], r["first_name"], r["last_name"]))
        assert all(len(v) == 1 for v in seen.values()), (partner, dataset)
        assert all(r["crm_id"].startswith(rows[0]["crm_id"][:4]) for r in rows)


def test_names_are_realistic(recomputed: Recomputed) -> None:
    first = set(_values(recomputed, "first_name"))
    last = set(_values(recomputed, "last_name"))
    assert len(first) > 300 and len(last) > 300
    assert "" not in first | last
    assert any(not n.isascii() for n in last), "umlauts and other letters survive in names"


def test_the_same_human_can_become_two_persons(recomputed: Recomputed) -> None:
    """Email garbled at one partner, valid at another: the phone-keyed rows are a separate person."""
    by_crm_phone: dict[str, set[str]] = defaultdict(set)
    for (_, _), rows in recomputed.rows.items():
        for r in rows:
            phone = norm_phone(r["phone"])
            if phone and r["_key"]:
                by_crm_phone[phone].add(r["_key"][0])
    assert any(kinds == {"e", "p"} for kinds in by_crm_phone.values())
