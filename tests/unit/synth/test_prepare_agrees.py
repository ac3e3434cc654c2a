"""``prepare``'s own normalization reproduces the expected prepare summary of the ground truth.

The other synth tests use an independent normalization; this one checks the real partner-side
code against the same files, so the two can never drift apart unnoticed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pytest
from _synth_recompute import Recomputed

normalize = pytest.importorskip("cleanroom.prepare.normalize")


def test_prepare_normalization_matches_expected_counts(recomputed: Recomputed, truth: dict[str, Any]) -> None:
    for (partner, dataset), rows in recomputed.rows.items():
        emails = normalize.normalize_emails(pa.array([r["email"] or None for r in rows], pa.string()))
        failed = [r for r, value in zip(rows, emails.values.to_pylist(), strict=True) if value is None]
        phones = [normalize.normalize_phone_reason(r["phone"] or None, "DE") for r in failed]
        email_unmatched = Counter(reason for reason in emails.reasons.to_pylist() if reason)
        phone_unmatched = Counter(p.reason for p in phones if p.value is None)
        expected = truth["prepare"][partner][dataset]
        keyed_by_phone = sum(1 for p in phones if p.value)
        assert (expected["keyed_by_email"], expected["keyed_by_phone"], expected["rows_without_identity"]) == (
            len(rows) - len(failed), keyed_by_phone, len(failed) - keyed_by_phone), (partner, dataset)
        assert expected["email_unmatched"] == {k: email_unmatched[k] for k in expected["email_unmatched"]}, (partner, dataset)
        assert expected["phone_unmatched"] == {k: phone_unmatched[k] for k in expected["phone_unmatched"]}, (partner, dataset)
