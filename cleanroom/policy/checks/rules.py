"""Cross-checks of the rules themselves: templates, consent, privacy numbers, the report, dates.

Errors are contradictions (a purpose nobody declared, a report section above the per-query cap).
Warnings are legal but risky settings a reviewer should see before signing: a large epsilon per
query, a small threshold, a budget that lets the monthly report fail.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction

from cleanroom.policy.checks.context import Context, check, known_list
from cleanroom.policy.issues import Issue, KeyPath
from cleanroom.policy.model import KNOWN_TEMPLATES, Privacy, Report, ReportSection, decimal_text

SCHEMA_LINE = "# yaml-language-server: $schema=policy.schema.json"
RISKY_EPSILON = Fraction(1)
SAFE_THRESHOLD = 20


@check("templates")
def templates_known(ctx: Context) -> Iterator[Issue]:
    for name in ctx["templates"]:
        if name not in KNOWN_TEMPLATES:
            close = difflib.get_close_matches(name, KNOWN_TEMPLATES, n=1)
            hint = (f"did you mean '{close[0]}'? " if close else "") + "templates are a fixed set"
            yield ctx.error("unknown-template", ("templates", name), f'unknown template "{name}" (known: {", ".join(KNOWN_TEMPLATES)})', hint)


@check("templates", "consent_purposes")
def consent_purposes_declared(ctx: Context) -> Iterator[Issue]:
    for name, rule in ctx["templates"].items():
        for purpose in rule.consent:
            if purpose not in ctx["consent_purposes"]:
                path = ctx.item(("templates", name, "consent"), purpose)
                msg = f'unknown purpose "{purpose}" (known: {known_list(ctx, "consent_purposes")})'
                yield ctx.error("consent-purpose", path, msg, "a purpose must be declared under consent_purposes: and match the partners' consent records")


@check("templates", "dimensions")
def template_dimensions_declared(ctx: Context) -> Iterator[Issue]:
    for name, rule in ctx["templates"].items():
        for dim in rule.dimensions:
            if dim not in ctx["dimensions"]:
                path = ctx.item(("templates", name, "dimensions"), dim)
                msg = f'dimension "{dim}" has no public domain, so it is not groupable'
                yield ctx.error("dimension-domain", path, msg, f"declare dimensions: {dim}: {{domain: [...]}} or remove it here")


@check("templates", "partners")
def template_recipients(ctx: Context) -> Iterator[Issue]:
    roles = {p: ctx.partners[p].role for p in ctx["partners"] if p in ctx.partners}
    for name, rule in ctx["templates"].items():
        yield from _recipients_in_scope(ctx, rule.recipients, ("templates", name, "recipients"))
        for role in rule.roles:
            if role not in roles.values():
                yield ctx.warning("roles", ("templates", name, "roles"), f"{name} is granted to role {role}, but no participating partner has that role")
            elif not any(roles.get(p) == role for p in rule.recipients):
                yield ctx.warning("recipients", ("templates", name, "recipients"), f"role {role} may run {name} but none of its partners is a recipient, so every such query is refused")


def _recipients_in_scope(ctx: Context, recipients: list[str], prefix: KeyPath) -> Iterator[Issue]:
    for pid in recipients:
        if pid not in ctx["partners"]:
            yield ctx.error("recipients", ctx.item(prefix, pid), f'recipient "{pid}" is not a participating partner', "recipients must be listed under partners:")


@check("privacy")
def privacy_numbers(ctx: Context) -> Iterator[Issue]:
    p: Privacy = ctx["privacy"]
    if p.max_epsilon_per_query > p.monthly_budget_per_partner:
        msg = f"max_epsilon_per_query {_e(p.max_epsilon_per_query)} is above monthly_budget_per_partner {_e(p.monthly_budget_per_partner)}: no partner could ever pay for such a query"
        yield ctx.error("epsilon-cap", ("privacy", "max_epsilon_per_query"), msg, "lower the per-query cap or raise the monthly budget")
    if p.monthly_budget_per_partner > p.collaboration_monthly_cap:
        msg = f"monthly_budget_per_partner {_e(p.monthly_budget_per_partner)} is above collaboration_monthly_cap {_e(p.collaboration_monthly_cap)}: the cap binds first"
        yield ctx.warning("epsilon-cap", ("privacy", "monthly_budget_per_partner"), msg)
    if p.max_epsilon_per_query > RISKY_EPSILON:
        msg = f"epsilon per query {_e(p.max_epsilon_per_query)} is above {_e(RISKY_EPSILON)}: a single answer may reveal a lot about one person"
        yield ctx.warning("epsilon-high", ("privacy", "max_epsilon_per_query"), msg, "keep max_epsilon_per_query at 1 or below unless you have a reason")
    if p.min_threshold < SAFE_THRESHOLD:
        msg = f"min_threshold {p.min_threshold} is under {SAFE_THRESHOLD}: cells of very few persons are released"
        yield ctx.warning("threshold-low", ("privacy", "min_threshold"), msg, f"use {SAFE_THRESHOLD} or more")
    yield from _reservation_fits(ctx, p)


def _reservation_fits(ctx: Context, p: Privacy) -> Iterator[Issue]:
    # The report is charged once for the collaboration (never to a partner), so only the cap must hold it.
    cap: Fraction = p.collaboration_monthly_cap
    if cap < p.report_reservation:
        msg = f"collaboration_monthly_cap {_e(cap)} is smaller than report_reservation {_e(p.report_reservation)}: the monthly report cannot be paid for"
        yield ctx.warning("report-budget", ("privacy", "collaboration_monthly_cap"), msg, "raise the cap or lower the reservation")


@check("privacy", "report")
def report_fits_reservation(ctx: Context) -> Iterator[Issue]:
    p: Privacy = ctx["privacy"]
    report: Report | None = ctx["report"]
    if report is None:
        if p.report_reservation > 0:
            yield ctx.warning("report-budget", ("privacy", "report_reservation"), "budget is reserved for a monthly report, but the policy defines no report:")
        return
    needed = report.epsilon_needed()
    if needed > p.report_reservation:
        msg = f"report_reservation {_e(p.report_reservation)} is less than the monthly report needs ({_e(needed)}, the sum of its sections): the report would fail"
        yield ctx.warning("report-budget", ("privacy", "report_reservation"), msg, f"reserve at least {_e(needed)} or make the report cheaper")
    for index, section in enumerate(report.sections):
        if section.epsilon > p.max_epsilon_per_query:
            msg = f"epsilon {_e(section.epsilon)} of section {section.name} is above the per-query cap {_e(p.max_epsilon_per_query)}"
            yield ctx.error("epsilon-cap", ("report", "sections", index, "epsilon"), msg, "split the section or lower its epsilon")


@check("report", "templates", "partners")
def report_sections(ctx: Context) -> Iterator[Issue]:
    report: Report | None = ctx["report"]
    if report is None:
        return
    yield from _recipients_in_scope(ctx, report.recipients, ("report", "recipients"))
    names = [s.name for s in report.sections]
    for index, section in enumerate(report.sections):
        yield from _section(ctx, section, ("report", "sections", index))
        if names.count(section.name) > 1:
            yield ctx.error("report-section", ("report", "sections", index, "name"), f"section name {section.name} is used twice", "give every section its own name")
        for recipient in section.recipients or []:
            if recipient not in report.recipients:
                msg = f"{recipient} receives section {section.name} but is not among the report's recipients"
                yield ctx.error("report-section", ctx.item(("report", "sections", index, "recipients"), recipient), msg, "add it to report.recipients or remove it here")


def _section(ctx: Context, section: ReportSection, path: KeyPath) -> Iterator[Issue]:
    rule = ctx["templates"].get(section.template)
    if rule is None:
        yield ctx.error("unknown-template", (*path, "template"), f'section {section.name} runs template "{section.template}", which the policy does not allow', "add it under templates: or change the section")
        return
    for dim in section.dimensions:
        if dim not in rule.dimensions:
            yield ctx.error("dimension-domain", ctx.item((*path, "dimensions"), dim), f'template {section.template} may not group by "{dim}"', f"allowed: {', '.join(rule.dimensions) or 'none'}")


@check("valid_from", "valid_until")
def validity_period(ctx: Context) -> Iterator[Issue]:
    start, end = ctx["valid_from"], ctx["valid_until"]
    if start > end:
        yield ctx.error("validity", ("valid_until",), f"valid_until {end} is before valid_from {start}")
    elif end < datetime.now(UTC).date():
        yield ctx.warning("validity", ("valid_until",), f"the policy expired on {end}: it can no longer be activated or used")


@check("collaboration")
def file_conventions(ctx: Context) -> Iterator[Issue]:
    collab = ctx["collaboration"]
    if ctx.source.path.stem != collab:
        msg = f"the file is named {ctx.source.path.name} but the collaboration is {collab}: the gateway looks for {collab}.yaml"
        yield ctx.warning("file-name", ("collaboration",), msg, f"rename the file to {collab}.yaml")
    if ctx.source.first_line.strip() != SCHEMA_LINE:
        yield ctx.warning("schema-line", (), "the first line should point editors at the JSON Schema", f"start the file with: {SCHEMA_LINE}")


@check("partners", "dimensions")
def partner_restrictions(ctx: Context) -> Iterator[Issue]:
    for pid in ctx["partners"]:
        partner = ctx.partners.get(pid)
        dims = partner.restrictions.dimensions if partner else None
        for dim in dims or []:
            if dim not in ctx["dimensions"]:
                msg = f"partners/{pid}.toml [restrictions] allows dimension {dim!r}, which the policy does not declare (no effect)"
                yield ctx.warning("restrictions", ctx.item(("partners",), pid), msg)


def _e(value: Fraction) -> str:
    return decimal_text(value)


__all__ = ["SCHEMA_LINE"]
