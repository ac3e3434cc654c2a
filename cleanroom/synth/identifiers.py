"""Each person's real email address and phone number, unique by construction.

Ground truth keys persons by their normalized identifiers, so two synthetic persons must never
share one. Email local parts look like people's (``anna.schmidt``, ``a.schmidt``,
``anna.schmidt87``, some with a ``+tag``); where two persons would collide the later ones get
``.2``, ``.3``... as real providers force. Phones are German landline and mobile numbers (plus a
few from neighbouring countries) whose subscriber part is a permutation of each person's rank
within its prefix, so they are valid for ``phonenumbers`` and never repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.errors import InternalError
from cleanroom.synth.names import NamePools, domain_forms, zipf_weights
from cleanroom.synth.sampling import choice

# Local-part styles: (first token, separator, second token, two-digit suffix?), with weights.
STYLES = (("first", ".", "last", False), ("first", "", "last", False), ("initial", ".", "last", False),
          ("first", "_", "last", False), ("last", ".", "first", False), ("first", ".", "last", True))
STYLE_WEIGHTS = (0.35, 0.15, 0.12, 0.08, 0.08, 0.22)
PLUS_TAGS = ("", "+auto", "+cars", "+news", "+aurora", "+shop")
PLUS_TAG_WEIGHTS = (0.95, 0.012, 0.012, 0.01, 0.008, 0.008)
YEARS = tuple(f"{y % 100:02d}" for y in range(1960, 2006))

# (country code, area or mobile prefix, subscriber digits, weight).
PREFIXES = (
    ("49", "30", 7, 0.10), ("49", "40", 7, 0.08), ("49", "89", 7, 0.08), ("49", "69", 7, 0.06),
    ("49", "221", 7, 0.07), ("49", "211", 7, 0.06), ("49", "151", 8, 0.10), ("49", "152", 8, 0.08),
    ("49", "160", 7, 0.07), ("49", "170", 7, 0.07), ("49", "171", 7, 0.06), ("49", "176", 8, 0.07),
    ("43", "664", 7, 0.012), ("41", "79", 7, 0.01), ("48", "601", 6, 0.006), ("39", "347", 7, 0.006), ("90", "532", 7, 0.006),
)
HOME_COUNTRY = "49"
PERMUTE = 48_271  # prime, so coprime with every subscriber range below


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


@dataclass(frozen=True)
class Emails:
    """Per person: the unique local part (with plus tag), the domain's two written forms, and the name."""

    local: pa.Array
    domain_unicode: pa.Array
    domain_puny: pa.Array
    first_name: pa.Array
    last_name: pa.Array

    def written(self, punycode: bool) -> pa.Array:
        return _join(self.local, "@", self.domain_puny if punycode else self.domain_unicode)

    def normalized(self) -> pa.Array:
        """What ``prepare`` must derive from any valid written form: trim, lower-case, IDNA domain."""
        return self.written(punycode=True)


def build_emails(rng: np.random.Generator, pools: NamePools, n: int) -> Emails:
    first = choice(rng, zipf_weights(len(pools.first_ascii)), n).astype(np.int64)
    last = choice(rng, zipf_weights(len(pools.last_ascii)), n).astype(np.int64)
    style = choice(rng, STYLE_WEIGHTS, n).astype(np.int64)
    tokens = {
        "first": pa.array(pools.first_ascii).take(pa.array(first)),
        "last": pa.array(pools.last_ascii).take(pa.array(last)),
        "initial": pc.utf8_slice_codeunits(pa.array(pools.first_ascii), 0, 1).take(pa.array(first)),
    }
    a = _by_style(style, [tokens[s[0]] for s in STYLES])
    b = _by_style(style, [tokens[s[2]] for s in STYLES])
    sep = pa.array([s[1] for s in STYLES]).take(pa.array(style))
    years = pa.array(("",) + YEARS).take(pa.array(np.where(style == 5, 1 + choice(rng, [1] * len(YEARS), n), 0)))
    candidate = _join(a, sep, b, years)
    unicode_forms, puny_forms, weights = domain_forms()
    domain = pa.array(choice(rng, weights, n).astype(np.int32))
    puny = pa.array(puny_forms).take(domain)
    rank = _rank_within(_join(candidate, "@", puny))
    suffix = pc.if_else(pa.array(rank > 0), _join(".", pc.cast(pa.array(rank + 1), pa.string())), "")
    tag = pa.array(PLUS_TAGS).take(pa.array(choice(rng, PLUS_TAG_WEIGHTS, n)))
    names = (pa.array(pools.first).take(pa.array(first)), pa.array(pools.last).take(pa.array(last)))
    return Emails(_join(candidate, suffix, tag), pa.array(unicode_forms).take(domain), puny, *names)


def _by_style(style: np.ndarray, options: list[pa.Array]) -> pa.Array:
    """Pick, per person, the token of its style (options[s][i])."""
    n = len(style)
    return pa.concat_arrays(options).take(pa.array(style * n + np.arange(n)))


def _rank_within(keys: pa.Array) -> np.ndarray:
    """0 for the first person with a given key, 1 for the second, ... (stable in person order)."""
    groups = pc.dictionary_encode(keys).indices.to_numpy()
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    return rank


@dataclass(frozen=True)
class Phones:
    """Per person: the number in every written format, and its E.164 form."""

    national: pa.Array
    parenthesized: pa.Array
    international: pa.Array
    international_00: pa.Array
    e164: pa.Array
    foreign: np.ndarray

    def formats(self) -> list[pa.Array]:
        return [self.national, self.parenthesized, self.international, self.international_00, self.e164]


def build_phones(rng: np.random.Generator, n: int) -> Phones:
    prefix = choice(rng, [p[3] for p in PREFIXES], n).astype(np.int64)
    sub = _subscribers(prefix)
    cc = pa.array([p[0] for p in PREFIXES]).take(pa.array(prefix))
    area = pa.array([p[1] for p in PREFIXES]).take(pa.array(prefix))
    foreign = np.array([p[0] != HOME_COUNTRY for p in PREFIXES])[prefix]
    head, tail = pc.utf8_slice_codeunits(sub, 0, 3), pc.utf8_slice_codeunits(sub, 3, 16)
    intl = _join("+", cc, " ", area, " ", sub)
    national = pc.if_else(pa.array(foreign), intl, _join("0", area, " ", sub))
    paren = pc.if_else(pa.array(foreign), intl, _join("(0", area, ") ", head, "-", tail))
    return Phones(national, paren, intl, _join("00", cc, " ", area, " ", sub), _join("+", cc, area, sub), foreign)


def _subscribers(prefix: np.ndarray) -> pa.Array:
    """Subscriber digits: a permutation of each person's rank among the holders of its prefix."""
    digits = np.array([p[2] for p in PREFIXES])[prefix]
    base = 2 * 10 ** (digits - 1)
    capacity = 10**digits - base
    rank = _rank_within(pa.array(prefix))
    if np.any(rank >= capacity):
        raise InternalError("internal.invariant", "more persons than phone numbers in one prefix")
    return pc.cast(pa.array(base + (rank * PERMUTE) % capacity), pa.string())
