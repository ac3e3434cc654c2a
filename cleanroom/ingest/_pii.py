"""Sniffing for raw personal data that should never have left the partner's machine.

``prepare`` drops every raw identifier before upload, so this is a safety net for a partner who
prepared by hand or mis-declared a column. It samples up to ``SAMPLE`` values per string column
(evenly spaced, so the whole file is covered and a replayed file gets the same verdict) and flags:

- email: any sampled value shaped like ``local@domain.tld`` (one real address is already a leak);
- phone: at least half of the sampled values are digits with ``+ ( ) . / -`` and spaces and hold
  7-15 digits (E.164 length), ISO dates excepted;
- personal name: at least half of the distinct sampled values are one to four letter-only words
  mostly found in Faker's first- and last-name lists of several locales. A column needs at least
  ``NAME_MIN_DISTINCT`` distinct values: the public region domain holds two surnames (North, West)
  and must not trip it.

Messages name the column, the kind and the share, never a value.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE = 2000
PHONE_MIN_SHARE = 0.5
NAME_MIN_SHARE = 0.5
NAME_MIN_DISTINCT = 5
NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES", "nl_NL", "pl_PL", "tr_TR")

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^\W\d_]{2,}$")
PHONE = re.compile(r"^\+?[\d\s()./-]{7,24}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T].*)?$")
NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")


@functools.cache
def known_names() -> frozenset[str]:
    """Case-folded first and last names from Faker's person providers (loaded once, ~0.2 s)."""
    names: set[str] = set()
    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in ("first_names", "last_names"):
            values = getattr(provider, attr, ())
            names.update(v.casefold() for v in values)
    return frozenset(names)


def sample_values(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """Up to SAMPLE non-empty string values, evenly spaced over the column."""
    n = len(column)
    if n == 0:
        return []
    idx = np.unique(np.linspace(0, n - 1, num=min(n, SAMPLE)).astype(np.int64))
    values = pc.take(column, pa.array(idx)).to_pylist()
    return [v.strip() for v in values if isinstance(v, str) and v.strip()]


def is_email(value: str) -> bool:
    return bool(EMAIL.match(value))


def is_phone(value: str) -> bool:
    if not PHONE.match(value) or ISO_DATE.match(value):
        return False
    return 7 <= sum(ch.isdigit() for ch in value) <= 15


def is_name(value: str) -> bool:
    """One to four letter-only words, at least half of them known first or last names."""
    words = value.replace(",", " ").split()
    if not 1 <= len(words) <= 4 or not all(NAME_WORD.match(w) for w in words):
        return False
    names = known_names()
    return 2 * sum(w.casefold() in names for w in words) >= len(words)


def detect(values: list[str]) -> tuple[str, str] | None:
    """The kind of raw PII the sample looks like and the evidence, or None."""
    if not values:
        return None
    emails = sum(map(is_email, values))
    if emails:
        return "email", f"{emails} of {len(values)} sampled values look like email addresses"
    hit = _share(values, is_phone, PHONE_MIN_SHARE)
    if hit:
        return "phone", f"{hit} of the sampled values look like phone numbers"
    distinct = sorted(set(values))
    if len(distinct) >= NAME_MIN_DISTINCT:
        hit = _share(distinct, is_name, NAME_MIN_SHARE)
        if hit:
            return "name", f"{hit} of the distinct sampled values look like personal names"
    return None


def _share(values: list[str], test: Callable[[str], bool], threshold: float) -> str | None:
    share = sum(map(test, values)) / len(values)
    return f"{share:.0%}" if share >= threshold else None
