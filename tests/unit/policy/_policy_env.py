"""Helpers for policy tests: copies of the shipped policy, exact text edits, and four real
compliance keys registered in a private copy of partners/ (as ``cleanroom keys signing`` does)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.crypto import new_signing_key, public_key_text, write_signing_key
from cleanroom.partners import Partner, load_partners, set_public_key
from cleanroom.policy import sign_policy

COLLAB = "aurora-2026"
PARTNER_IDS = ("aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial")


def shipped(repo: Path) -> Path:
    return repo / "policies" / f"{COLLAB}.yaml"


def copy_policy(repo: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / f"{COLLAB}.yaml"
    shutil.copyfile(shipped(repo), dest)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once) by ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def line_of(path: Path, needle: str) -> int:
    """1-based line of the single line containing ``needle``."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


@dataclass
class SignedEnv:
    """A workspace: re-keyed partners, their compliance keys (also as PEM files), a policy copy."""

    root: Path
    partners_dir: Path
    keys: dict[str, Ed25519PrivateKey]
    key_files: dict[str, Path]
    policy: Path
    store: Path

    @property
    def partners(self) -> dict[str, Partner]:
        return load_partners(self.partners_dir)

    def sign(self, *who: str) -> None:
        for partner in who or PARTNER_IDS:
            sign_policy(self.policy, self.keys[partner], partner, self.partners, store_dir=self.store)


def make_env(repo: Path, root: Path, partners_dir: Path) -> SignedEnv:
    keys: dict[str, Ed25519PrivateKey] = {}
    files: dict[str, Path] = {}
    for partner in PARTNER_IDS:
        keys[partner] = new_signing_key()
        files[partner] = root / "keys" / f"{partner}.compliance.pem"
        write_signing_key(files[partner], keys[partner])
        set_public_key(partners_dir, partner, "compliance", public_key_text(keys[partner]))
    policy = copy_policy(repo, root / "policies")
    return SignedEnv(root=root, partners_dir=partners_dir, keys=keys, key_files=files, policy=policy, store=root / "store")
