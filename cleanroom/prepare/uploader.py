"""The signing key of a prepare run must be the partner's registered uploader key.

The gateway verifies every manifest against the uploader key in ``partners/<id>.toml``; a file
signed with any other key (another partner's, the partner's own compliance key, a key made for a
test) would be refused only at upload, after the whole run. Checking it first, on the partner's
machine, turns that late ``upload.signature_invalid`` into an immediate ``prepare.wrong_key``
that names both keys, by the first characters of their public text (public keys, never secrets).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.crypto import PUBLIC_KEY_PREFIX, public_key_text
from cleanroom.errors import PrepareError
from cleanroom.partners import Partner

SHOWN_CHARS = 8


def key_fingerprint(public_text: str) -> str:
    """``ed25519:AbCd1234…``: enough of a public key's text to tell keys apart in a message."""
    return public_text[: len(PUBLIC_KEY_PREFIX) + SHOWN_CHARS] + "…"


def check_signing_key(partner: Partner, key: Ed25519PrivateKey) -> None:
    """Refuse a signing key whose public half is not ``[keys] uploader`` of the partner file."""
    mine, registered = public_key_text(key), partner.keys.uploader
    if mine != registered:
        raise PrepareError(
            "prepare.wrong_key",
            f"the signing key ({key_fingerprint(mine)}) is not {partner.id}'s registered uploader key ({key_fingerprint(registered)}) "
            f"in partners/{partner.id}.toml: the gateway would refuse every file; sign with {partner.id}'s uploader key "
            f"(from `cleanroom keys signing --partner {partner.id} --role uploader`)",
            partner=partner.id,
            key=key_fingerprint(mine),
            registered=key_fingerprint(registered),
        )


__all__ = ["check_signing_key", "key_fingerprint"]
