"""Reading a policy file: YAML to plain data plus a map from every key path to its line.

PyYAML's composer gives nodes that carry ``start_mark``; we compose once, construct the data
from the same node tree, and walk it to remember where each key and list item starts. That is
what lets every lint message say ``file:line key.path``.

Two YAML traps are closed here because a policy is a legal text that people sign:

- YAML 1.1 reads ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` as booleans (``NO`` for Norway
  becomes ``False``). The loader accepts only ``true``/``false`` as booleans (YAML 1.2 core).
- PyYAML silently keeps the last of two equal keys, so a reviewer could read one value while
  the gateway enforces another. Duplicate keys are reported as errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cleanroom.errors import PolicyError
from cleanroom.policy.issues import Issue, KeyPath, format_path

_BOOL = "tag:yaml.org,2002:bool"


_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster, same marks


class _PolicyLoader(_BASE):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans (only true/false)."""


_PolicyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PolicyLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass(frozen=True)
class PolicySource:
    """A parsed policy file: its data and the 1-based line of every key path."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    first_line: str = ""

    def line(self, path: KeyPath) -> int:
        """Line of ``path``, else of its nearest present ancestor (a missing key: its parent)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def issue(self, level: str, check: str, path: KeyPath, message: str, hint: str = "") -> Issue:
        return Issue(
            level=level,  # type: ignore[arg-type]
            check=check,
            file=str(self.path),
            line=self.line(path),
            path=format_path(path),
            message=message,
            hint=hint,
        )


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("policy.not_found", f"{path}: no such policy file", path=str(path)) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise PolicyError("policy.invalid", f"{path}: not a UTF-8 text file ({exc})", path=str(path)) from None


def parse(path: Path) -> tuple[PolicySource | None, list[Issue]]:
    """Parse ``path``; a YAML problem comes back as an Issue with its line, not an exception."""
    text = read_text(path)
    loader = _PolicyLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_issue(path, exc)]
    except yaml.YAMLError as exc:
        return None, [_issue(path, 1, "yaml-syntax", f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        return None, [_issue(path, 1, "yaml-syntax", "a policy must be a YAML mapping of keys (collaboration:, partners:, ...)")]
    lines: dict[KeyPath, int] = {}
    duplicates: list[Issue] = []
    _walk(node, (), lines, duplicates, path)
    first = text.splitlines()[0] if text else ""
    return PolicySource(path=path, data=data, lines=lines, first_line=first), duplicates


def _walk(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int], dups: list[Issue], path: Path) -> None:
    """Record the line of every mapping key and list item below ``node``; flag duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*prefix, key)
            if key in seen:
                msg = f"key {key!r} appears twice; YAML would silently keep the last one"
                dups.append(_issue(path, key_node.start_mark.line + 1, "duplicate-key", msg, format_path(child), "remove one of them"))
            seen.add(key)
            lines.setdefault(child, key_node.start_mark.line + 1)
            _walk(value_node, child, lines, dups, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*prefix, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, dups, path)


def _yaml_issue(path: Path, exc: yaml.MarkedYAMLError) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = " ".join(p for p in (exc.context, exc.problem) if p)
    return _issue(path, line, "yaml-syntax", f"not valid YAML: {problem}", hint="check indentation and quoting on this line")


def _issue(path: Path, line: int, check: str, message: str, where: str = "(top level)", hint: str = "") -> Issue:
    return Issue(level="error", check=check, file=str(path), line=line, path=where, message=message, hint=hint)


__all__ = ["PolicySource", "parse", "read_text"]
