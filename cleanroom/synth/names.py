"""Pools of realistic names and email domains, built once per run with Faker (seeded).

Calling Faker per customer would take minutes for a million people, so the generator asks it for
a few thousand first and last names once, from the locales of a German car market, and persons
index those pools with numpy (common names more often than rare ones). Each name also gets an
ASCII spelling (``Jürgen`` -> ``juergen``) for building email addresses.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import idna
import numpy as np
from faker import Faker

# Locale -> share of draws; German names dominate, as in a German dealer network.
LOCALES = {"de_DE": 0.62, "de_AT": 0.08, "tr_TR": 0.08, "pl_PL": 0.07, "it_IT": 0.05, "en_GB": 0.05, "fr_FR": 0.05}
POOL_DRAWS = 6000
GERMAN_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue", "ı": "i", "ł": "l", "Ł": "l", "ø": "o", "đ": "d"})

# (domain as the person writes it, weight). The IDN ones are written in Unicode at some partners
# and in punycode at others; normalization (IDNA) makes them equal.
EMAIL_DOMAINS = (
    ("gmail.com", 0.22), ("web.de", 0.16), ("gmx.de", 0.15), ("t-online.de", 0.10), ("outlook.com", 0.07),
    ("icloud.com", 0.05), ("yahoo.de", 0.04), ("gmx.net", 0.04), ("freenet.de", 0.03), ("posteo.de", 0.02),
    ("mail.de", 0.02), ("aol.com", 0.02), ("hotmail.de", 0.02), ("müller-post.de", 0.012),
    ("bücherwurm.de", 0.008), ("straße.de", 0.006), ("köln-online.de", 0.008), ("zürich-mail.ch", 0.006),
)


@dataclass(frozen=True)
class NamePools:
    first: list[str]
    first_ascii: list[str]
    last: list[str]
    last_ascii: list[str]


def ascii_name(name: str) -> str:
    """Lower-case ASCII letters of a name, for email local parts (``Hans-Jürgen`` -> ``hansjuergen``)."""
    folded = unicodedata.normalize("NFKD", name.translate(GERMAN_ASCII))
    return "".join(c for c in folded.lower() if "a" <= c <= "z")


def build_pools(seed: int) -> NamePools:
    """Unique first and last names with their ASCII spellings, in a seed-determined order."""
    first: dict[str, None] = {}
    last: dict[str, None] = {}
    for i, (locale, share) in enumerate(LOCALES.items()):
        fake = Faker(locale)
        fake.seed_instance(seed * 31 + i)
        for _ in range(int(POOL_DRAWS * share)):
            first.setdefault(fake.first_name(), None)
            last.setdefault(fake.last_name(), None)
    f = [n for n in first if len(ascii_name(n)) >= 2]
    l_ = [n for n in last if len(ascii_name(n)) >= 2]
    return NamePools(f, [ascii_name(n) for n in f], l_, [ascii_name(n) for n in l_])


def zipf_weights(k: int) -> np.ndarray:
    """Popularity of the k pool entries: a few names are common, most are rare."""
    return 1.0 / (np.arange(k) + 8.0) ** 0.9


def domain_forms() -> tuple[list[str], list[str], np.ndarray]:
    """Email domains as written (Unicode), as punycode (what normalization yields), and weights."""
    unicode_forms = [d for d, _ in EMAIL_DOMAINS]
    return unicode_forms, [idna.encode(d).decode("ascii") for d in unicode_forms], np.array([w for _, w in EMAIL_DOMAINS])
