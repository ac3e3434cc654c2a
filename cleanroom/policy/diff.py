"""``diff``: what a new policy version allows or forbids compared with the old, in plain words.

Compliance officers review meaning, not YAML. Each :class:`Change` says what becomes newly
allowed or forbidden and whether it loosens privacy (more people, data, detail or epsilon
exposed; a weaker guarantee). Changes that only move noise around (wider clamp bounds, larger
contribution bounds) are reported as allowing more but do not weaken epsilon, and say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cleanroom.policy.canonical import content_hash
from cleanroom.policy.model import MeasureBounds, Policy, Report, TemplateRule, decimal_text

Kind = Literal["allows", "forbids", "changes"]
SYMBOL = {"allows": "+", "forbids": "-", "changes": "~"}


class Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    kind: Kind
    loosens_privacy: bool
    message: str

    def render(self) -> str:
        flag = "  [LOOSENS PRIVACY]" if self.loosens_privacy else ""
        return f"{SYMBOL[self.kind]} {self.path}: {self.message}{flag}"


def _c(path: str, kind: Kind, message: str, loosens: bool = False) -> Change:
    return Change(path=path, kind=kind, loosens_privacy=loosens, message=message)


def _sets(path: str, old: Iterable[str], new: Iterable[str], added: Callable[[str], str], removed: Callable[[str], str], loosens: bool = True) -> Iterator[Change]:
    """One change per added (allows) and removed (forbids) member."""
    before, after = set(old), set(new)
    for item in sorted(after - before):
        yield _c(path, "allows", added(item), loosens)
    for item in sorted(before - after):
        yield _c(path, "forbids", removed(item))


def diff_policies(old: Policy, new: Policy) -> list[Change]:
    """Every change of meaning from ``old`` to ``new``, section by section."""
    sections = (_scope, _joins, _templates, _dimensions, _measures, _filterable, _privacy, _report, _validity, _meta)
    changes = [c for section in sections for c in section(old, new)]
    if not changes and content_hash(old) != content_hash(new):
        changes.append(_c("(policy)", "changes", "only labels changed (join names, descriptions): nothing is allowed or forbidden differently"))
    return changes


def _scope(old: Policy, new: Policy) -> Iterator[Change]:
    yield from _sets("partners", old.partners, new.partners, lambda p: f"partner {p} joins the collaboration", lambda p: f"partner {p} leaves the collaboration")
    yield from _sets("datasets", old.datasets, new.datasets, lambda d: f"dataset {d} enters the scope", lambda d: f"dataset {d} leaves the scope")
    yield from _sets("consent_purposes", old.consent_purposes, new.consent_purposes, lambda p: f"consent purpose {p} is declared", lambda p: f"consent purpose {p} is no longer declared", loosens=False)


def _joins(old: Policy, new: Policy) -> Iterator[Change]:
    before, after = old.approved_joins(), new.approved_joins()
    for a, b, role in sorted(after - before, key=lambda t: (t[2], t[0], t[1])):
        yield _c("joins", "allows", f"role {role} may now join {a} with {b}", True)
    for a, b, role in sorted(before - after, key=lambda t: (t[2], t[0], t[1])):
        yield _c("joins", "forbids", f"role {role} may no longer join {a} with {b}")


def _templates(old: Policy, new: Policy) -> Iterator[Change]:
    for name in sorted(set(new.templates) - set(old.templates)):
        rule = new.templates[name]
        yield _c(f"templates.{name}", "allows", f"template {name} is newly allowed (roles {', '.join(rule.roles)}; consent {', '.join(rule.consent)})", True)
    for name in sorted(set(old.templates) - set(new.templates)):
        yield _c(f"templates.{name}", "forbids", f"template {name} is no longer allowed")
    for name in sorted(set(old.templates) & set(new.templates)):
        yield from _template(name, old.templates[name], new.templates[name])


def _template(name: str, old: TemplateRule, new: TemplateRule) -> Iterator[Change]:
    p = f"templates.{name}"
    yield from _sets(f"{p}.roles", old.roles, new.roles, lambda r: f"{name} newly granted to role {r}", lambda r: f"{name} no longer granted to role {r}")
    yield from _sets(
        f"{p}.consent",
        new.consent,
        old.consent,  # reversed: a purpose removed from the requirement ALLOWS more rows
        lambda c: f"{name} no longer requires consent purpose {c}: persons who did not grant it now count",
        lambda c: f"{name} now also requires consent purpose {c}: persons without it stop counting",
    )
    yield from _sets(f"{p}.dimensions", old.dimensions, new.dimensions, lambda d: f"{name} may now group by {d}", lambda d: f"{name} may no longer group by {d}")
    yield from _sets(f"{p}.recipients", old.recipients, new.recipients, lambda r: f"{r} may now receive {name} results", lambda r: f"{r} no longer receives {name} results")


def _dimensions(old: Policy, new: Policy) -> Iterator[Change]:
    for name in sorted(set(new.dimensions) - set(old.dimensions)):
        yield _c(f"dimensions.{name}", "allows", f"{name} becomes groupable ({len(new.domain(name))} public values)", True)
    for name in sorted(set(old.dimensions) - set(new.dimensions)):
        yield _c(f"dimensions.{name}", "forbids", f"{name} is no longer groupable")
    for name in sorted(set(old.dimensions) & set(new.dimensions)):
        before, after = old.domain(name), new.domain(name)
        path = f"dimensions.{name}.domain"
        added, removed = [v for v in after if v not in before], [v for v in before if v not in after]
        if added:
            yield _c(path, "allows", f"{name} gains public values {', '.join(added)}: results get cells for them", True)
        if removed:
            yield _c(path, "forbids", f"{name} loses public values {', '.join(removed)}: rows with them fall outside every cell")
        if not added and not removed and before != after:
            yield _c(path, "changes", f"{name} values are reordered (display order only)")


def _measures(old: Policy, new: Policy) -> Iterator[Change]:
    for col in sorted(set(new.measures) - set(old.measures)):
        b = new.measures[col]
        yield _c(f"measures.{col}", "allows", f"{col} becomes summable within [{b.min}, {b.max}]", True)
    for col in sorted(set(old.measures) - set(new.measures)):
        yield _c(f"measures.{col}", "forbids", f"{col} is no longer summable")
    for col in sorted(set(old.measures) & set(new.measures)):
        change = _bounds(col, old.measures[col], new.measures[col])
        if change is not None:
            yield change


def _bounds(col: str, old: MeasureBounds, new: MeasureBounds) -> Change | None:
    if (old.min, old.max) == (new.min, new.max):
        return None
    span = f"[{old.min}, {old.max}] -> [{new.min}, {new.max}]"
    if new.min <= old.min and new.max >= old.max:
        return _c(f"measures.{col}", "allows", f"clamp bounds widened {span}: larger values count in full; noise on these sums grows in proportion (epsilon unchanged)")
    if new.min >= old.min and new.max <= old.max:
        return _c(f"measures.{col}", "forbids", f"clamp bounds narrowed {span}: more values are clamped; sums get less noise")
    return _c(f"measures.{col}", "changes", f"clamp bounds moved {span}")


def _filterable(old: Policy, new: Policy) -> Iterator[Change]:
    yield from _sets(
        "filterable",
        old.filterable,
        new.filterable,
        lambda c: f"{c} may now be compared to literals in filters: smaller groups can be singled out",
        lambda c: f"{c} may no longer be compared to literals in filters",
    )


def _number(path: str, label: str, old: Fraction | int, new: Fraction | int, loosen_when_higher: bool) -> Iterator[Change]:
    if old == new:
        return
    show = decimal_text(Fraction(old)), decimal_text(Fraction(new))
    higher = new > old
    loosens = higher == loosen_when_higher
    verb = "raised" if higher else "lowered"
    yield _c(path, "allows" if loosens else "forbids", f"{label} {verb} from {show[0]} to {show[1]}", loosens)


def _privacy(old: Policy, new: Policy) -> Iterator[Change]:
    a, b = old.privacy, new.privacy
    yield from _number("privacy.min_threshold", "minimum cell size (threshold)", a.min_threshold, b.min_threshold, loosen_when_higher=False)
    yield from _number("privacy.max_epsilon_per_query", "epsilon cap per query", a.max_epsilon_per_query, b.max_epsilon_per_query, True)
    yield from _number("privacy.monthly_budget_per_partner", "monthly epsilon budget per partner", a.monthly_budget_per_partner, b.monthly_budget_per_partner, True)
    yield from _number("privacy.collaboration_monthly_cap", "collaboration-wide monthly epsilon cap", a.collaboration_monthly_cap, b.collaboration_monthly_cap, True)
    if a.report_reservation != b.report_reservation:
        msg = f"epsilon reserved for the monthly report changed from {decimal_text(a.report_reservation)} to {decimal_text(b.report_reservation)}"
        yield _c("privacy.report_reservation", "changes", msg)
    if a.mechanism != b.mechanism:
        weaker = b.mechanism == "gaussian"
        note = "approximate DP with a delta: a weaker guarantee" if weaker else "pure epsilon-DP: a stronger guarantee"
        yield _c("privacy.mechanism", "allows" if weaker else "forbids", f"mechanism {a.mechanism} -> {b.mechanism} ({note})", weaker)
    if a.delta is not None and b.delta is not None:
        yield from _number("privacy.delta", "delta", a.delta, b.delta, True)
    for key in ("max_groups_per_person", "max_rows_per_person"):
        before, after = getattr(a, key), getattr(b, key)
        if before != after:
            more = "more of each person's data counts; noise grows in proportion (epsilon unchanged)" if after > before else "less of each person's data counts; less noise"
            yield _c(f"privacy.{key}", "changes", f"{key} {before} -> {after}: {more}")


def _report(old: Policy, new: Policy) -> Iterator[Change]:
    if old.report is None or new.report is None:
        if (old.report is None) != (new.report is None):
            yield _c("report", "changes", "a monthly report is added" if new.report else "the monthly report is removed")
        return
    yield from _sets("report.recipients", old.report.recipients, new.report.recipients, lambda r: f"{r} now receives the monthly report", lambda r: f"{r} no longer receives the monthly report")
    yield from _sets("report.sections", _sections(old.report), _sections(new.report), lambda s: f"report section {s} added", lambda s: f"report section {s} removed", loosens=False)


def _sections(report: Report) -> set[str]:
    return {f"{s.name} ({s.template}, epsilon {decimal_text(s.epsilon)})" for s in report.sections}


def _validity(old: Policy, new: Policy) -> Iterator[Change]:
    if new.valid_until != old.valid_until:
        later = new.valid_until > old.valid_until
        yield _c("valid_until", "allows" if later else "forbids", f"valid until {new.valid_until} (was {old.valid_until})", later)
    if new.valid_from != old.valid_from:
        earlier = new.valid_from < old.valid_from
        yield _c("valid_from", "allows" if earlier else "forbids", f"valid from {new.valid_from} (was {old.valid_from})", earlier)


def _meta(old: Policy, new: Policy) -> Iterator[Change]:
    if old.collaboration != new.collaboration:
        yield _c("collaboration", "changes", f"collaboration id {old.collaboration} -> {new.collaboration}")
    if old.title != new.title:
        yield _c("title", "changes", f"title {old.title!r} -> {new.title!r}")


__all__ = ["Change", "diff_policies"]
