"""``explain``: what a query would read, how it is bounded, and how accurate it would be, before spending.

Why it is free: it authorizes and compiles exactly like the release path but stops before the
charge. It reads no data (only the policy, the partner files and the store's version metadata),
so its answer depends on nothing a person contributed and costs no budget. The accuracy it
promises is the one the release path will deliver: the same split of epsilon, the same
sensitivities, the same interval arithmetic (dp/accuracy.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from cleanroom.budget import Epsilon
from cleanroom.dp import split_epsilon
from cleanroom.dp.accuracy import epsilon_for_half_width, half_width
from cleanroom.dp.noise import calibrate_gaussian, calibrate_laplace
from cleanroom.dp.sensitivity import l1_sensitivity, l2_sensitivity
from cleanroom.engine import CompiledQuery, compile_query
from cleanroom.engine.compiled import PartPlan
from cleanroom.engine.present import omitted_notes
from cleanroom.engine.templates.funnel import FINANCED
from cleanroom.gateway.auth import Principal
from cleanroom.gateway.models import ExpectedAccuracy, ExplainRequest, ExplainResponse, PartPlanOut
from cleanroom.gateway.release import ReleaseContext, authorize, build_scope, check_effective
from cleanroom.policy import effective_rules
from cleanroom.policy.model import Policy


def explain_query(ctx: ReleaseContext, policy: Policy, principal: Principal, request: ExplainRequest) -> ExplainResponse:
    """Authorize and compile ``request`` as the release path would, and describe it; nothing is charged or read."""
    template = request.template or "sql"
    params = {"sql": request.sql} if request.sql is not None else dict(request.params)
    rule = authorize(policy, principal, template)
    epsilon = Epsilon.parse(request.epsilon)
    scope = build_scope(policy, ctx.partners, principal.partner_role, rule, datetime.now(UTC), consent_applied=True,
                        stored=ctx.store.active_versions())
    compiled = compile_query(template, params, scope)
    rules = effective_rules(policy, ctx.partners, compiled.datasets)
    check_effective(rules, compiled.dimensions, epsilon, template)
    shares = split_epsilon(epsilon.fraction, [p.weight for p in compiled.parts])
    mechanism = policy.privacy.mechanism
    deltas = split_epsilon(policy.privacy.delta, [p.weight for p in compiled.parts]) if policy.privacy.delta else [None] * len(shares)
    parts = [_part(p, share, delta, mechanism) for p, share, delta in zip(compiled.parts, shares, deltas, strict=True)]
    expected = [_expected(q, parts, mechanism, request, compiled, shares) for q in quantities(compiled)]
    return ExplainResponse(
        template=compiled.template, params=compiled.params, datasets=compiled.datasets, joins=[list(j) for j in compiled.joins],
        consent_purposes=list(rule.consent), threshold=rules.min_threshold, epsilon=float(epsilon.fraction), parts=parts,
        expected=expected, plan=_words(compiled, rule.consent, rules.min_threshold, parts, scope.max_rows_per_person),
        notes=omitted_notes(compiled.meta),
    )


def _part(plan: PartPlan, share: Fraction, delta: Fraction | None, mechanism: str) -> PartPlanOut:
    """The same calibration the release will use (so the scale shown is the scale applied)."""
    if mechanism == "laplace" or delta is None:
        cal = calibrate_laplace(l1_sensitivity(plan.bounds), share)
    else:
        cal = calibrate_gaussian(l2_sensitivity(plan.bounds), share, delta)
    return PartPlanOut(part=plan.name, cells=len(plan.cells), sensitivity=l1_sensitivity(plan.bounds), epsilon=f"{share.numerator}/{share.denominator}",
                       mechanism=cal.mechanism, scale=cal.scale / plan.unit)


def quantities(compiled: CompiledQuery) -> list[tuple[str, str, int]]:
    """(what is shown, from which part, how many cells it sums) for every kind of number the template shows."""
    meta, t = compiled.meta, compiled.template
    if t == "funnel" and meta.get("view") == "cohort":
        stages: list[str] = list(meta["stages"])
        steps = stages[:-1] if stages[-1] == FINANCED else stages
        out = [(f"persons at stage {s} (per group)", "reached", len(stages) - k) for k, s in enumerate(steps)]
        if stages[-1] == FINANCED:
            out.append(("financed sales (per group)", "reached", 1))
        return out
    if t == "attribution":
        credit = compiled.part("credit")
        financed = len(credit.cells[0]) == 2
        per_value = 2 if financed else 1
        out = [("credited sales per campaign or channel", "credit", per_value), ("total sales", "credit", len(credit.cells))]
        if financed:
            out.insert(1, ("credited financed sales per campaign or channel", "credit", 1))
        return out
    if t == "overlap":
        return [("persons of a dataset", "venn", 2), ("shared persons", "venn", 1)]
    if t == "lifecycle":
        return [("contracts ending per segment", "ending", 2), ("seen again per segment", "ending", 1)]
    return [(f"{p.name} per cell", p.name, 1) for p in compiled.parts]


def _expected(q: tuple[str, str, int], parts: list[PartPlanOut], mechanism: str, request: ExplainRequest, compiled: CompiledQuery,
              shares: list[Fraction]) -> ExpectedAccuracy:
    name, part_name, terms = q
    index = next(i for i, p in enumerate(parts) if p.part == part_name)
    part, plan = parts[index], compiled.parts[index]
    unit = plan.unit
    ci = half_width(mechanism, part.scale * unit, terms) / unit  # type: ignore[arg-type]
    target = None
    if request.target_ci95 is not None and mechanism == "laplace":
        needed_share = epsilon_for_half_width("laplace", float(part.sensitivity), terms, request.target_ci95 * unit)
        total = sum(shares)
        target = round(needed_share * float(total / shares[index]), 4) if needed_share != float("inf") else None
    return ExpectedAccuracy(quantity=name, part=part_name, cells_summed=terms, ci95=round(ci, 3), epsilon_for_target=target)


def _words(compiled: CompiledQuery, purposes: list[str], threshold: int, parts: list[PartPlanOut], max_rows: int) -> list[str]:
    joins = ", ".join(f"{a} <-> {b}" for a, b in compiled.joins) or "none"
    lines = [
        f"Reads {', '.join(compiled.datasets)}, only rows of persons who consented to {', '.join(purposes) or 'nothing in particular'} "
        f"(each partner's own consent records), at most {max_rows} rows per person and dataset.",
        f"Links persons across datasets on the keyed identifier only: {joins}.",
    ]
    if compiled.template == "funnel" and compiled.meta.get("view") == "cohort":
        lines.append(f"Cohort funnel from {compiled.meta['entry']}: stages {' -> '.join(compiled.meta['stages'])}, within "
                     f"{compiled.meta['window_days']} days of entry; each person is counted once, by the furthest stage reached.")
    for p in parts:
        lines.append(f"Part {p.part}: {p.cells} cells, one person moves them by at most {p.sensitivity} in total; "
                     f"epsilon {p.epsilon} -> {p.mechanism} noise of scale {p.scale:.3g} per cell.")
    lines.append(f"Any shown count below {threshold} persons is suppressed (decided on its noisy value; intervals account for it).")
    return lines


__all__ = ["explain_query", "quantities"]
