"""What ``prepare`` should report for each file, and how the identity rule splits humans.

These numbers come from the generator's own bookkeeping of which raw identifiers it broke, so a
``prepare`` run over the same CSVs must reproduce them exactly (rows, rows without identity,
rows keyed by email or by phone, and unusable emails and phones by reason, with the reason
names of ``cleanroom.prepare.normalize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cleanroom.synth.profiles import EMAIL_REASON_BY_STATE, EMAIL_REASONS, PHONE_REASON_BY_STATE, PHONE_REASONS
from cleanroom.synth.writer import Output


def _unmatched(states: np.ndarray, by_state: tuple[str | None, ...], names: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for state, reason in enumerate(by_state):
        if reason is not None:
            counts[reason] += int((states == state).sum())
    return counts


def prepare_summary(outputs: list[Output]) -> dict[str, dict[str, Any]]:
    """Per partner and dataset, in the shape of ``prepare``'s identity counts.

    Email reasons count every row whose email is unusable; phone reasons count the rows that fell
    back to the phone and failed there too, so they add up to ``rows_without_identity``.
    """
    summary: dict[str, dict[str, Any]] = {}
    for out in outputs:
        key = out.ikey
        fell_back = out.email_reason != 0
        summary.setdefault(out.partner, {})[out.dataset] = {
            "rows": len(key),
            "keyed_by_email": int(((key >= 0) & (key % 2 == 0)).sum()),
            "keyed_by_phone": int(((key >= 0) & (key % 2 == 1)).sum()),
            "rows_without_identity": int((key < 0).sum()),
            "email_unmatched": _unmatched(out.email_reason, EMAIL_REASON_BY_STATE, EMAIL_REASONS),
            "phone_unmatched": _unmatched(out.phone_reason[fell_back], PHONE_REASON_BY_STATE, PHONE_REASONS),
        }
    return summary


def identity_summary(outputs: list[Output], customers: int) -> dict[str, Any]:
    """Distinct identities (the store's persons), by how many partners hold them, and split humans."""
    partners = sorted({o.partner for o in outputs})
    holders = np.zeros(2 * customers, dtype=np.int8)
    for partner in partners:
        present = np.zeros(2 * customers, dtype=bool)
        for out in outputs:
            if out.partner == partner:
                present[out.ikey[out.ikey >= 0]] = True
        holders += present
    keys = np.flatnonzero(holders)
    per_human = np.bincount(keys // 2, minlength=customers)
    spread = np.bincount(holders[keys], minlength=len(partners) + 1)
    return {
        "persons": len(keys),
        "by_email": int((keys % 2 == 0).sum()),
        "by_phone": int((keys % 2 == 1).sum()),
        "by_partner_count": {str(i): int(spread[i]) for i in range(1, len(partners) + 1)},
        "humans": int((per_human > 0).sum()),
        "humans_with_two_identities": int((per_human == 2).sum()),
    }
