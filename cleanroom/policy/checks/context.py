"""What every cross-check sees: the parsed source (for lines), the partners, the valid sections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cleanroom.partners import Dataset, Partner
from cleanroom.policy.issues import Issue, KeyPath
from cleanroom.policy.source import PolicySource

CheckFn = Callable[["Context"], Iterator[Issue]]
REGISTRY: list[tuple[frozenset[str], CheckFn]] = []


def check(*sections: str) -> Callable[[CheckFn], CheckFn]:
    """Register a cross-check that runs only when every named section validated."""

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append((frozenset(sections), fn))
        return fn

    return register


@dataclass(frozen=True)
class Context:
    source: PolicySource
    partners: dict[str, Partner]
    sections: dict[str, Any]
    salvaged: frozenset[str] = frozenset()  # sections of which only the valid entries are kept

    def __getitem__(self, section: str) -> Any:
        return self.sections[section]

    def error(self, check: str, path: KeyPath, message: str, hint: str = "") -> Issue:
        return self.source.issue("error", check, path, message, hint)

    def warning(self, check: str, path: KeyPath, message: str, hint: str = "") -> Issue:
        return self.source.issue("warning", check, path, message, hint)

    def raw(self, path: KeyPath) -> Any:
        node: Any = self.source.data
        for step in path:
            if isinstance(node, dict) and step in node:
                node = node[step]
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                return None
        return node

    def item(self, prefix: KeyPath, value: Any) -> KeyPath:
        """Path of ``value`` in the list at ``prefix`` as written (validated lists are sorted)."""
        items = self.raw(prefix)
        if isinstance(items, list) and value in items:
            return (*prefix, items.index(value))
        return prefix

    def dataset(self, qualified: str) -> Dataset | None:
        """The declared dataset ``partner.dataset``, or None when partner or dataset is unknown."""
        owner, _, name = qualified.partition(".")
        partner = self.partners.get(owner)
        return partner.datasets.get(name) if partner else None

    def scoped(self) -> Iterator[tuple[str, Dataset]]:
        """In-scope datasets that exist in partners/ (unknown ones are reported elsewhere)."""
        for qualified in self.sections.get("datasets", []):
            ds = self.dataset(qualified)
            if ds is not None:
                yield qualified, ds

    def columns_named(self, column: str) -> list[tuple[str, str]]:
        """``(qualified dataset, tag)`` of every in-scope column called ``column``."""
        return [(q, ds.columns[column].tag) for q, ds in self.scoped() if column in ds.columns]

    def dealer_partners(self) -> list[str]:
        scope = self.sections.get("partners", [])
        return [p for p in scope if p in self.partners and self.partners[p].role == "dealer"]


def known_list(ctx: Context, section: str) -> str:
    """The known values as the user wrote them (order kept), for messages."""
    raw = ctx.raw((section,))
    values = raw if isinstance(raw, list) else ctx.sections.get(section, [])
    return ", ".join(str(v) for v in values)


__all__ = ["REGISTRY", "Context", "check", "known_list"]
