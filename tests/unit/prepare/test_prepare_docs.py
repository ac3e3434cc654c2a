"""The partner guide's test vector is what other implementations check against: it must be right."""

from __future__ import annotations

import re
from pathlib import Path

from cleanroom.prepare import identity_key, normalize_email, normalize_phone, salt_fingerprint

ROW = re.compile(r"^\| `(?P<raw>[^`]*)`(?: \(region DE\))? \| `(?P<norm>[^`]*)` \| `(?P<hid>[0-9a-f]{64})` \|$", re.MULTILINE)


def test_guide_test_vector_matches_the_code(repo: Path) -> None:
    guide = (repo / "docs" / "guides" / "partner-workflow.md").read_text()
    salt = bytes(range(32))
    assert f"fingerprint `{salt_fingerprint(salt)}`" in guide
    rows = list(ROW.finditer(guide))
    assert len(rows) == 2
    for row in rows:
        kind = "email" if "@" in row["raw"] else "phone"
        normalized = normalize_email(row["raw"]) if kind == "email" else normalize_phone(row["raw"], "DE")
        assert normalized == row["norm"]
        assert identity_key(salt, kind, normalized) == row["hid"]
