"""Consent records: one row per (person, purpose) a partner holds, granted and maybe revoked.

Each partner is its own controller, so each draws its own consent for the persons it knows:
most grant measurement, fewer attribution, fewer still analytics; some hold nothing at all and a
few revoke. Every grant and revocation happens strictly before the end date (midnight starting
it), so a query made any time after the data period sees exactly the consent the truth used.
"""

from __future__ import annotations

import numpy as np

from cleanroom.synth.calendar import Period
from cleanroom.synth.domains import PURPOSES
from cleanroom.synth.frame import Coded, Rows
from cleanroom.synth.sampling import DAY, explode, seconds_between

# P(the partner holds the purpose) by role, in PURPOSES order (measurement, attribution, analytics).
HELD = {"brand": (0.92, 0.85, 0.55), "dealer": (0.90, 0.75, 0.50), "finance": (0.96, 0.85, 0.40)}
P_REVOKED = 0.07
NEVER = np.iinfo(np.int64).max


def first_seen(n: int, parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Earliest time (seconds) each person appears in any of a partner's datasets; NEVER if absent."""
    first = np.full(n, NEVER, dtype=np.int64)
    for pid, seconds in parts:
        np.minimum.at(first, pid, seconds)
    return first


def consent_rows(rng: np.random.Generator, role: str, first: np.ndarray, period: Period) -> Rows:
    """Consent rows for every person the partner knows (``first != NEVER``)."""
    known = np.flatnonzero(first != NEVER)
    held = rng.random((len(known), len(PURPOSES))) < np.asarray(HELD[role])
    owner, _ = explode(np.ones(len(known), dtype=np.int64) * len(PURPOSES))
    purpose = np.tile(np.arange(len(PURPOSES), dtype=np.int16), len(known))
    keep = held.reshape(-1)
    owner, purpose = owner[keep], purpose[keep]
    pid = known[owner]
    k = len(pid)
    limit = period.consent_limit
    wanted = first[pid] - seconds_between(rng, 0, 20 * DAY, k)
    granted = np.minimum(wanted, limit - seconds_between(rng, 2, 3 * DAY, k))
    revoked = np.where(rng.random(k) < P_REVOKED, seconds_between(rng, granted + 1, limit, k), -1)
    cols = {"purpose": Coded(purpose, PURPOSES), "granted_at": granted, "revoked_at": revoked}
    return Rows(pid, cols)  # type: ignore[arg-type]
