"""The committed JSON Schema is generated from the model and must not be stale."""

from __future__ import annotations

import json
from pathlib import Path

from _policy_env import shipped

from cleanroom.policy import policy_json_schema, schema_text
from cleanroom.policy.checks.rules import SCHEMA_LINE


def test_committed_schema_is_current(repo: Path) -> None:
    committed = (repo / "policies" / "policy.schema.json").read_text()
    assert committed == schema_text(), "policies/policy.schema.json is stale: run cleanroom policy schema --out policies/policy.schema.json"


def test_every_policy_points_at_the_schema(repo: Path) -> None:
    for path in (repo / "policies").glob("*.yaml"):
        assert path.read_text().splitlines()[0] == SCHEMA_LINE, path


def test_schema_describes_every_top_level_key(repo: Path) -> None:
    import yaml

    schema = policy_json_schema()
    keys = set(yaml.safe_load(shipped(repo).read_text()))
    assert keys <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert all(prop.get("description") or "$ref" in prop or "anyOf" in prop for prop in schema["properties"].values())
    json.dumps(schema)  # serializable
