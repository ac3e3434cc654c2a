"""Identifier normalization: the exact rules every partner applies before keying.

Why this matters: two partners only meet on a person if they turn the same human's identifier
into the same bytes. So the rules are few, fixed and documented (docs/guides/partner-workflow.md):

* email: trim surrounding whitespace, lower-case, split at the last ``@``, IDNA-encode the domain
  with the ``idna`` package (UTS 46, non-transitional, STD3 rules). The standard-library codec is
  IDNA 2003 and maps ``straße.de`` to ``strasse.de``, a *different* domain; plus tags and dots in
  the local part are kept, because they are part of the address a person gave.
* phone: ``phonenumbers`` parse with a default region (DE), must be a *valid* number (parse alone
  accepts ``12345``), formatted as E.164.

Emails are normalized vectorized with ``pyarrow.compute`` over the *distinct* raw values; the
IDNA step runs once per distinct domain (there are few). Phones need ``phonenumbers`` per value
(about 25 µs each), so callers dedupe first and parse only the phones they need. The scalar
functions run the very same code on a one-element array, so they can never disagree with the
bulk path.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, NamedTuple

import idna
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.errors import ConfigError

EmailReason = Literal["empty", "no_at", "bad_local", "bad_domain"]
PhoneReason = Literal["empty", "unparseable", "invalid_number"]
EMAIL_REASONS: tuple[EmailReason, ...] = ("empty", "no_at", "bad_local", "bad_domain")
PHONE_REASONS: tuple[PhoneReason, ...] = ("empty", "unparseable", "invalid_number")
DEFAULT_REGION = "DE"

# Split an address holding exactly one "@" (an "@" in the local part needs quoting; we refuse it).
_SPLIT = r"^(?P<local>[^@]*)@(?P<domain>[^@]*)$"
_WHITESPACE = r"[\s\p{Z}]"  # ASCII whitespace and every Unicode space separator (NBSP, ...)


class Normalized(NamedTuple):
    """One identifier after normalization: exactly one of ``value`` and ``reason`` is set."""

    value: str | None
    reason: str | None


class EmailBatch(NamedTuple):
    """Normalized emails aligned with the input: ``values`` null where ``reasons`` says why."""

    values: pa.Array
    reasons: pa.Array


# --- email -------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def idna_domain(domain: str) -> str | None:
    """The ASCII (A-label) form of ``domain``, or None when it is not a usable mail domain.

    Cached because a million addresses share a few thousand domains.
    """
    try:
        encoded = idna.encode(domain, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    labels = encoded.split(".")
    return encoded if len(labels) >= 2 and all(labels) else None


def _encode_domains(domains: pa.Array) -> pa.Array:
    """IDNA-encode each distinct domain once, then broadcast back to every position."""
    encoded = pc.dictionary_encode(domains)
    distinct = [idna_domain(d) for d in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(distinct, pa.string()), encoded.indices)


def _reason(low: pa.Array, at_count: pa.Array, local: pa.Array, domain: pa.Array) -> pa.Array:
    """The first failing check per value (null where the email is usable), in EMAIL_REASONS order."""
    bad_local = pc.or_kleene(
        pc.or_kleene(pc.greater(at_count, 1), pc.equal(pc.utf8_length(local), 0)),
        pc.match_substring_regex(local, _WHITESPACE),
    )
    reason = pc.if_else(pc.fill_null(bad_local, False), "bad_local", pc.if_else(pc.is_null(domain), "bad_domain", None))
    reason = pc.if_else(pc.equal(at_count, 0), "no_at", reason)
    return pc.if_else(pc.fill_null(pc.equal(pc.utf8_length(low), 0), True), "empty", reason)


def normalize_emails(raw: pa.Array) -> EmailBatch:
    """Normalize an array of raw emails; nulls and failures get a reason instead of a value."""
    low = pc.utf8_lower(pc.utf8_trim_whitespace(raw.cast(pa.string())))
    at_count = pc.count_substring(low, "@")
    parts = pc.extract_regex(low, _SPLIT)  # matches exactly one "@"; more is a bad local part
    local = pc.struct_field(parts, "local")
    domain = _encode_domains(pc.struct_field(parts, "domain"))
    reason = _reason(low, at_count, local, domain)
    value = pc.if_else(pc.is_null(reason), pc.binary_join_element_wise(local, domain, "@"), None)
    return EmailBatch(values=value, reasons=reason)


def normalize_email_reason(raw: str | None) -> Normalized:
    """Normalize one email; returns the value or the reason it was rejected."""
    batch = normalize_emails(pa.array([raw], pa.string()))
    return Normalized(batch.values[0].as_py(), batch.reasons[0].as_py())


def normalize_email(raw: str | None) -> str | None:
    """The normalized email, or None when ``raw`` is not a usable address."""
    return normalize_email_reason(raw).value


# --- phone -------------------------------------------------------------------------------------


def check_region(region: str) -> str:
    """Refuse a default region ``phonenumbers`` does not know: it would reject every national number."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError("config.invalid", f"unknown phone region {region!r}; use an ISO 3166 code such as DE, AT, FR")
    return region


def normalize_phone_reason(raw: str | None, region: str = DEFAULT_REGION) -> Normalized:
    """Normalize one phone number to E.164, or say why not (never raises on bad input)."""
    text = (raw or "").strip()
    if not text:
        return Normalized(None, "empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return Normalized(None, "unparseable")
    if not phonenumbers.is_valid_number(number):
        return Normalized(None, "invalid_number")
    return Normalized(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None)


def normalize_phone(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of ``raw``, or None when it is not a valid number."""
    return normalize_phone_reason(raw, region).value


def normalize_phone_list(raws: list[str], region: str) -> list[Normalized]:
    """Normalize many (already distinct) phones; a module-level function so a worker process can run it."""
    return [normalize_phone_reason(r, region) for r in raws]


__all__ = [
    "DEFAULT_REGION",
    "EMAIL_REASONS",
    "PHONE_REASONS",
    "EmailBatch",
    "EmailReason",
    "Normalized",
    "PhoneReason",
    "check_region",
    "idna_domain",
    "normalize_email",
    "normalize_email_reason",
    "normalize_emails",
    "normalize_phone",
    "normalize_phone_list",
    "normalize_phone_reason",
]
