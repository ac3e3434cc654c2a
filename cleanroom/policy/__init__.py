"""Policy as code: model, YAML loading with lines, lint, canonical form, signatures, diff, activation.

Never touches data or SQL. The gateway calls :func:`active_policy` (or :func:`load_policy`) and
the :class:`Policy` helpers (``template_rule``, ``join_approved``, ``domain``,
``measure_bounds``) plus :func:`effective_rules`.
"""

from __future__ import annotations

from cleanroom.policy.activation import Activation, activate, active_policy, active_record, history
from cleanroom.policy.canonical import canonical_bytes, content_hash
from cleanroom.policy.diff import Change, diff_policies
from cleanroom.policy.effective import EffectiveRules, effective_by_partner, effective_rules
from cleanroom.policy.issues import Issue
from cleanroom.policy.lint import lint
from cleanroom.policy.load import load_policy
from cleanroom.policy.model import KNOWN_TEMPLATES, Policy, TemplateRule, decimal_text, micro_epsilon
from cleanroom.policy.schema import policy_json_schema, schema_text
from cleanroom.policy.signatures import PolicySignature, SignatureReport, sign_policy, verify_signatures

__all__ = [
    "KNOWN_TEMPLATES",
    "Activation",
    "Change",
    "EffectiveRules",
    "Issue",
    "Policy",
    "PolicySignature",
    "SignatureReport",
    "TemplateRule",
    "activate",
    "active_policy",
    "active_record",
    "canonical_bytes",
    "content_hash",
    "decimal_text",
    "diff_policies",
    "effective_by_partner",
    "effective_rules",
    "history",
    "lint",
    "load_policy",
    "micro_epsilon",
    "policy_json_schema",
    "schema_text",
    "sign_policy",
    "verify_signatures",
]
