"""Shape validation: pydantic errors translated into Issues a compliance officer can act on.

Pydantic reports every shape error at once, with a ``loc`` tuple. We walk that tuple along the
actual data (skipping pydantic's internal steps such as union tags) to get the key path the user
wrote, look its line up, and reword the common error types. When the whole policy fails, each
top-level section is validated on its own so that cross-checks can still run on the sections
that are fine: one typo must not hide every other problem.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from cleanroom.policy.issues import Issue, KeyPath, format_path
from cleanroom.policy.model import MODEL_FIELD_NAMES, PATTERN_NAMES, Policy
from cleanroom.policy.source import PolicySource

# Hints by generic key path (``*`` matches one key); the first match wins.
HINTS: list[tuple[str, str]] = [
    ("measures.*", "declare integer clamp bounds, e.g. {min: 0, max: 150000}"),
    ("dimensions.*.domain*", "a public domain is a list of values or {from: YYYY-MM, to: YYYY-MM}"),
    ("dimensions.*", "a dimension is groupable only with a public domain: domain: [a, b, c] or domain: {from: 2025-11, to: 2026-10}"),
    ("datasets*", "list datasets as partner.dataset, as declared in partners/<partner>.toml"),
    ("privacy.delta", "delta is given only with mechanism: gaussian, e.g. delta: 1.0e-7"),
    ("privacy*", "see docs/policy-reference.md#privacy"),
    ("templates.*", "a template needs roles, consent and recipients (dimensions optional)"),
    ("joins*", "a join needs left, right and roles; key is always hid"),
    ("report*", "the report needs recipients and at least one section {name, template, epsilon}"),
]


@dataclass(frozen=True)
class Validated:
    """The policy when valid; else the sections that validate alone, and which were salvaged."""

    policy: Policy | None
    sections: dict[str, Any]
    salvaged: frozenset[str]
    issues: list[Issue]


def validate(source: PolicySource) -> Validated:
    """Validate the whole policy; on failure, also return the sections that validate alone."""
    try:
        policy = Policy.model_validate(source.data)
        return Validated(policy, dict(policy), frozenset(), [])
    except ValidationError as exc:
        issues = [_issue(source, err) for err in exc.errors()]
    sections, salvaged = _valid_sections(source.data)
    return Validated(None, sections, frozenset(salvaged), issues)


def _valid_sections(data: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Each top-level field validated alone (defaults for absent optional ones)."""
    sections: dict[str, Any] = {}
    salvaged: set[str] = set()
    for name, info in Policy.model_fields.items():
        if name not in data:
            if not info.is_required():
                sections[name] = info.get_default(call_default_factory=True)
            continue
        try:
            sections[name] = TypeAdapter(info.rebuild_annotation()).validate_python(data[name])
        except ValidationError:
            kept = _salvage(info.annotation, data[name])
            if kept is not None:
                sections[name] = kept
                salvaged.add(name)
    return sections, salvaged


def _salvage(annotation: Any, raw: Any) -> Any:
    """The entries of a failed list or dict section that validate alone (their errors are reported)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and isinstance(raw, list):
        item = TypeAdapter(args[0])
        kept = [v for v in (_try(item, r) for r in raw) if v is not None]
        return sorted(set(kept)) if all(isinstance(v, str) for v in kept) else kept
    if origin is dict and isinstance(raw, dict):
        key, value = TypeAdapter(args[0]), TypeAdapter(args[1])
        return {k: v for k, r in raw.items() if _try(key, k) is not None and (v := _try(value, r)) is not None}
    return None


def _try(adapter: TypeAdapter[Any], raw: Any) -> Any:
    try:
        return adapter.validate_python(raw)
    except ValidationError:
        return None


def _issue(source: PolicySource, err: ErrorDetails) -> Issue:
    path, extra = _data_path(source.data, err["loc"])
    check, message = _section_message(err, path, extra) or ("schema", _message(err, path, extra))
    return source.issue("error", check, path, message, _hint(err, path))


def _section_message(err: ErrorDetails, path: KeyPath, extra: list[str | int]) -> tuple[str, str] | None:
    """The two shape errors that deserve their own check id: a measure without bounds and a
    dimension without a public domain (missing, empty or null)."""
    missing = str(extra[-1]) if err["type"] == "missing" and extra else None
    empty = err.get("input") is None or err["type"] == "too_short"
    if path[:1] == ("measures",) and len(path) == 2 and (missing in ("min", "max") or (empty and not extra)):
        what = f"clamp bound '{missing}'" if missing else "clamp bounds"
        return "measure-bounds", f"measure {path[1]} has no {what}"
    if path[:1] == ("dimensions",) and 2 <= len(path) <= 3 and (missing == "domain" or (empty and path[2:] in ((), ("domain",)))):
        return "dimension-domain", f"dimension {path[1]} has no public domain"
    return None


def _data_path(data: Any, loc: tuple[int | str, ...]) -> tuple[KeyPath, list[str | int]]:
    """Follow ``loc`` through ``data``; return the path that exists and the steps that do not."""
    path: list[str | int] = []
    missing: list[str | int] = []
    node = data
    for step in loc:
        if isinstance(node, dict) and step in node:
            node = node[step]
            path.append(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
            path.append(step)
        elif step in ("list", "range", "[key]") or (isinstance(step, str) and step.startswith(("function-", "lax-", "str"))):
            continue
        else:
            missing.append(step)
    return tuple(path), missing


def _message(err: ErrorDetails, path: KeyPath, extra: list[str | int]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    last = str(extra[-1]) if extra else (str(path[-1]) if path else "")
    if kind == "missing":
        return _missing(path, last)
    if kind == "extra_forbidden":
        return f'unknown key "{last}"'
    if kind == "literal_error":
        return f"unknown value {_show(value)} (expected {ctx.get('expected', '')})"
    if kind == "string_pattern_mismatch":
        return f"{_show(value)} is not {PATTERN_NAMES.get(ctx.get('pattern', ''), 'in the expected form')}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind in ("too_short", "too_long"):
        return f"{err['msg'].rstrip('.').lower()}"
    return f"{err['msg'].rstrip('.')} (got {_show(value)})"


def _missing(path: KeyPath, key: str) -> str:
    return f"missing required key '{key}'" + (f" in {format_path(path)}" if path else "")


def _hint(err: ErrorDetails, path: KeyPath) -> str:
    if err["type"] == "extra_forbidden":
        allowed = _keys_at(path[:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed or sorted(MODEL_FIELD_NAMES), n=1)
        if close:
            return f"did you mean '{close[0]}'?"
        if allowed:
            return f"allowed keys here: {', '.join(allowed)}"
    generic = _generic(path)
    for pattern, hint in HINTS:
        if fnmatchcase(generic, pattern):
            return hint
    return "see docs/policy-reference.md"


def _keys_at(path: KeyPath) -> list[str]:
    """The keys the model allows at ``path`` (empty when it is not a model there)."""
    current: Any = Policy
    for step in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(step)) or _by_alias(current, str(step))
            current = field.annotation if field else None
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _by_alias(model: type[BaseModel], key: str) -> FieldInfo | None:
    return next((f for f in model.model_fields.values() if f.alias == key), None)


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional: ``Annotated[Report | None, ...]`` -> ``Report``."""
    while get_origin(annotation) is Annotated or get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is not Annotated and len(args) != 1:
            return annotation
        annotation = args[0]
    return annotation


def _generic(path: KeyPath) -> str:
    """``("measures", "a.b.c", "max")`` -> ``measures.*.max``: the shape of a path, for hints."""
    parts = ["*" if isinstance(p, int) else str(p) for p in path]
    if len(parts) > 1 and parts[0] in ("measures", "dimensions", "templates"):
        parts[1] = "*"
    return ".".join(parts)


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


__all__ = ["validate"]
