"""How each partner holds each person's identifiers: the messy raw PII and the identity it yields.

A partner keeps one customer record per person (its CRM) and exports the same raw identifiers on
every row of that person: mixed case, stray spaces, IDN domains in Unicode at some partners and in
punycode at finance, national and international phone formats, and a share of unusable values
(empty, ``n/a``, ``12345``, an address without ``@`` or with a broken domain). Whether a value is
usable is decided here, by construction, and :func:`identity` turns it into the key ``prepare``
will derive: the email where valid, else the phone where valid, else none. That key, not the
internal person id, is what the ground truth counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.synth.frame import Rows
from cleanroom.synth.identifiers import Emails, Phones
from cleanroom.synth.sampling import choice

# Why prepare rejects an identifier, by state (valid, empty, "n/a", no @ / broken domain, "12345"):
# the reason names of cleanroom.prepare.normalize.
EMAIL_REASON_BY_STATE = (None, "empty", "no_at", "no_at", "bad_domain")
EMAIL_REASONS = ("empty", "no_at", "bad_local", "bad_domain")
PHONE_REASON_BY_STATE = (None, "empty", "unparseable", "invalid_number")
PHONE_REASONS = ("empty", "unparseable", "invalid_number")
EMAIL_STATE = {"brand": (0.93, 0.015, 0.015, 0.02, 0.02), "dealer": (0.84, 0.08, 0.03, 0.025, 0.025), "finance": (0.95, 0.02, 0.01, 0.01, 0.01)}
PHONE_STATE = {"brand": (0.35, 0.60, 0.02, 0.03), "dealer": (0.85, 0.07, 0.03, 0.05), "finance": (0.96, 0.02, 0.01, 0.01)}
EMAIL_CASE = {"brand": (0.60, 0.20, 0.05, 0.15), "dealer": (0.40, 0.35, 0.15, 0.10), "finance": (0.70, 0.0, 0.30, 0.0)}
EMAIL_PAD = {"brand": (0.90, 0.03, 0.05, 0.02), "dealer": (0.75, 0.08, 0.12, 0.05), "finance": (0.97, 0.01, 0.01, 0.01)}
PHONE_FORMAT = {"brand": (0.10, 0.0, 0.30, 0.0, 0.60), "dealer": (0.45, 0.25, 0.15, 0.15, 0.0), "finance": (0.0, 0.0, 0.60, 0.0, 0.40)}
PUNYCODE = {"brand": False, "dealer": False, "finance": True}
NO_AT_SEPARATORS = ("(at)", " at ", "")
CRM_PREFIX = {"aurora-motors": "AMC-", "northside-dealers": "NSD-", "lakeside-autos": "LKA-", "aurora-financial": "AFS-"}
CRM_SPACE = 10**8


@dataclass(frozen=True)
class Profile:
    """One partner's record of the persons it knows. ``pos[pid]`` indexes the arrays (-1: unknown)."""

    pos: np.ndarray
    pid: np.ndarray
    email_state: np.ndarray
    phone_state: np.ndarray
    email: pa.Array
    phone: pa.Array
    phone_valid: pa.Array
    crm_id: pa.Array


def build_profile(rng: np.random.Generator, partner: str, role: str, known: np.ndarray, emails: Emails, phones: Phones, n: int) -> Profile:
    k = len(known)
    pos = np.full(n, -1, dtype=np.int64)
    pos[known] = np.arange(k)
    email_state = choice(rng, EMAIL_STATE[role], k)
    phone_state = choice(rng, PHONE_STATE[role], k)
    email = _raw_emails(rng, role, emails, known, email_state)
    phone_fmt = choice(rng, PHONE_FORMAT[role], k).astype(np.int64)
    phone_valid = pa.concat_arrays(phones.formats()).take(pa.array(phone_fmt * n + known))
    phone = _with_state(phone_valid, phone_state, [None, "n/a", "12345"])
    return Profile(pos, known, email_state, phone_state, email, phone, phone_valid, _crm_ids(partner, known))


def _with_state(valid: pa.Array, state: np.ndarray, others: list[str | None]) -> pa.Array:
    """Replace values whose state is not 0 with the state's fixed text (None: empty)."""
    k = len(valid)
    pool = pa.concat_arrays([valid, pa.array(others, pa.string())])
    return pool.take(pa.array(np.where(state == 0, np.arange(k), k + state.astype(np.int64) - 1)))


def _raw_emails(rng: np.random.Generator, role: str, emails: Emails, known: np.ndarray, state: np.ndarray) -> pa.Array:
    """The address as this partner wrote it: broken where the state says so, then cased and padded."""
    idx = pa.array(known)
    local = emails.local.take(idx)
    domain = (emails.domain_puny if PUNYCODE[role] else emails.domain_unicode).take(idx)
    k = len(known)
    sep = pa.array(NO_AT_SEPARATORS).take(pa.array(choice(rng, (0.4, 0.3, 0.3), k)))
    broken_domain = pc.if_else(pa.array(rng.random(k) < 0.5), pc.replace_substring(domain, ".", "..", max_replacements=1), "")
    forms = [
        pc.binary_join_element_wise(local, "@", domain, ""),
        pa.nulls(k, pa.string()),
        pa.array(["n/a"] * k),
        pc.binary_join_element_wise(local, sep, domain, ""),
        pc.binary_join_element_wise(local, "@", broken_domain, ""),
    ]
    chosen = pa.concat_arrays(forms).take(pa.array(state.astype(np.int64) * k + np.arange(k)))
    return _pad(rng, role, _case(rng, role, chosen))


def _case(rng: np.random.Generator, role: str, text: pa.Array) -> pa.Array:
    k = len(text)
    forms = [text, pc.ascii_title(text), pc.ascii_upper(text), pc.ascii_capitalize(text)]
    return pa.concat_arrays(forms).take(pa.array(choice(rng, EMAIL_CASE[role], k).astype(np.int64) * k + np.arange(k)))


def _pad(rng: np.random.Generator, role: str, text: pa.Array) -> pa.Array:
    k = len(text)
    pad = choice(rng, EMAIL_PAD[role], k)
    before = pa.array(["", " ", "", "  "]).take(pa.array(pad))
    after = pa.array(["", "", " ", " "]).take(pa.array(pad))
    return pc.binary_join_element_wise(before, text, after, "")


def _crm_ids(partner: str, known: np.ndarray) -> pa.Array:
    """Partner-internal customer numbers: a partner-specific permutation, unrelated across partners."""
    offset = sum(map(ord, partner)) * 7_919
    number = (known * 48_271 + offset) % CRM_SPACE
    digits = pc.utf8_lpad(pc.cast(pa.array(number), pa.string()), width=8, padding="0")
    return pc.binary_join_element_wise(CRM_PREFIX.get(partner, partner[:3].upper() + "-"), digits, "")


def identity(profile: Profile, rows: Rows) -> np.ndarray:
    """Each row's identity key as ``prepare`` derives it: 2*pid (email), 2*pid+1 (phone), -1 (none)."""
    p = profile.pos[rows.pid]
    email_ok = (profile.email_state[p] == 0) & ~rows.phone_only
    phone_ok = (profile.phone_state[p] == 0) | rows.phone_only
    return np.where(email_ok, 2 * rows.pid, np.where(phone_ok, 2 * rows.pid + 1, -1))


def raw_identifiers(profile: Profile, rows: Rows) -> tuple[pa.Array, pa.Array]:
    """Raw email and phone of each row; phone-only rows carry the caller's number and no email."""
    idx = pa.array(profile.pos[rows.pid])
    only = pa.array(rows.phone_only)
    email = pc.if_else(only, pa.scalar(None, pa.string()), profile.email.take(idx))
    phone = pc.if_else(only, profile.phone_valid.take(idx), profile.phone.take(idx))
    return email, phone


def reasons(profile: Profile, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Per row: email and phone state (index into *_REASON_BY_STATE; phone-only rows: no email, valid phone)."""
    p = profile.pos[rows.pid]
    email = np.where(rows.phone_only, 1, profile.email_state[p])
    phone = np.where(rows.phone_only, 0, profile.phone_state[p])
    return email, phone

