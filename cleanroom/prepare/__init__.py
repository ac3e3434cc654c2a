"""Partner-side preparation: normalize and key identifiers, drop PII, sign what leaves the machine.

This package runs on a partner's machine and must never import server modules (store, ingest,
engine, gateway, dp, budget); a test checks it.
"""

from __future__ import annotations

from cleanroom.prepare.keying import PREFIXES, check_salt, identity_key, salt_fingerprint
from cleanroom.prepare.normalize import (
    DEFAULT_REGION,
    EMAIL_REASONS,
    PHONE_REASONS,
    Normalized,
    normalize_email,
    normalize_email_reason,
    normalize_emails,
    normalize_phone,
    normalize_phone_reason,
)
from cleanroom.prepare.pipeline import SUMMARY_FILE, DatasetSummary, PrepareSummary, Progress, prepare_partner

__all__ = [
    "DEFAULT_REGION",
    "EMAIL_REASONS",
    "PHONE_REASONS",
    "PREFIXES",
    "SUMMARY_FILE",
    "DatasetSummary",
    "Normalized",
    "PrepareSummary",
    "Progress",
    "check_salt",
    "identity_key",
    "normalize_email",
    "normalize_email_reason",
    "normalize_emails",
    "normalize_phone",
    "normalize_phone_reason",
    "prepare_partner",
    "salt_fingerprint",
]
