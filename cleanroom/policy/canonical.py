"""The canonical bytes of a policy: what every partner signs, and its content hash.

Canonical JSON (``cleanroom.crypto.canonical_json``) of the *validated* model, not of the file:
comments, key order, indentation, quoting, flow or block style and the order of set-like lists
do not change it, while any change of meaning does. Defaults are included, so omitting a key and
writing its default value sign the same bytes.
"""

from __future__ import annotations

from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.policy.model import Policy


def canonical_bytes(policy: Policy) -> bytes:
    return canonical_json(policy.model_dump(mode="json"))


def content_hash(policy: Policy) -> str:
    """Hex SHA-256 of :func:`canonical_bytes`: the policy version's identity."""
    return sha256_hex(canonical_bytes(policy))


__all__ = ["canonical_bytes", "content_hash"]
