"""The policy reference documents every key and every lint check id; the guide exists."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from cleanroom.policy import model
from cleanroom.policy.checks import rules, scope
from cleanroom.policy.model import MODEL_FIELD_NAMES


def test_reference_documents_every_key(repo: Path) -> None:
    doc = (repo / "docs" / "policy-reference.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.MULTILINE))
    assert documented >= MODEL_FIELD_NAMES, f"undocumented keys: {sorted(MODEL_FIELD_NAMES - documented)}"


def test_reference_lists_every_check_id(repo: Path) -> None:
    doc = (repo / "docs" / "policy-reference.md").read_text()
    source = "".join(inspect.getsource(m) for m in (rules, scope, model))
    ids = set(re.findall(r'ctx\.(?:error|warning)\(\s*"([a-z-]+)"', source)) | {"yaml-syntax", "duplicate-key", "schema", "measure-bounds", "dimension-domain"}
    missing = sorted(i for i in ids if f"`{i}`" not in doc)
    assert not missing, f"check ids missing from docs/policy-reference.md: {missing}"


def test_guide_walks_the_whole_workflow(repo: Path) -> None:
    guide = (repo / "docs" / "guides" / "compliance-workflow.md").read_text()
    for command in ("policy lint", "policy diff", "policy sign", "policy verify", "policy activate", "keys signing --partner"):
        assert f"cleanroom {command}" in guide, command
