"""Error codes are a public contract: every code raised is listed in CODES and documented."""

from __future__ import annotations

import re
from pathlib import Path

from cleanroom.errors import CODES

CODE_LITERAL = re.compile(r"""(?:Error|raise_problem)\(\s*["']([a-z_]+\.[a-z_]+)["']""")


def test_every_raised_code_is_listed(repo: Path) -> None:
    used: dict[str, str] = {}
    for path in (repo / "cleanroom").rglob("*.py"):
        for code in CODE_LITERAL.findall(path.read_text()):
            used.setdefault(code, str(path.relative_to(repo)))
    unknown = {c: f for c, f in used.items() if c not in CODES}
    assert not unknown, f"codes raised but not in errors.CODES: {unknown}"


def test_every_code_is_documented(repo: Path) -> None:
    doc = (repo / "docs" / "reference" / "errors.md").read_text()
    headings = set(re.findall(r"^## `([a-z_]+\.[a-z_]+)`", doc, re.MULTILINE))
    assert headings == set(CODES), f"missing: {set(CODES) - headings}; stale: {headings - set(CODES)}"
