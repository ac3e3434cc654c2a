"""The one function that releases a number: :func:`release_query`.

Every result an analyst, the CLI or the monthly report ever sees comes out of here, in this
order, so that no path can skip a step:

    authorize (active policy, template, role, recipients)
    -> compile (engine: bounded, consent-filtered SQL over entitled views only)
    -> effective rules (strictest of policy and data owners: threshold, epsilon cap, dimensions)
    -> cache lookup (identical query on identical data: same noisy answer, no new charge)
    -> charge the budget (committed BEFORE any data is read; never refunded)
    -> execute over consented rows (the store's consented tables; exact aggregates stay here)
    -> noise (OpenDP) and suppression on noisy counts
    -> store + audit -> respond

A crash after the charge loses the epsilon but never releases an uncharged result.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cleanroom import dp
from cleanroom.audit import AuditLog
from cleanroom.budget import Epsilon, Ledger
from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.engine import CompiledQuery, DatasetRef, Scope, compile_query, execute, present, view_name
from cleanroom.engine.consent import consent_horizon_sql
from cleanroom.errors import AuthError, CleanroomError, PolicyError, QueryError
from cleanroom.gateway.admission import UNLIMITED, Admission
from cleanroom.gateway.auth import Principal
from cleanroom.gateway.models import NoiseInfo, QueryRequest, QueryResponse
from cleanroom.partners import Partner
from cleanroom.policy import content_hash, effective_rules
from cleanroom.policy.model import Policy, TemplateRule
from cleanroom.store import DatasetVersion, Store, ViewSource

log = logging.getLogger(__name__)

QUERY_ROLES = frozenset({"analyst"})
REPORT_ACCOUNT = "@report"  # the ledger account shared report sections are charged to (one per collaboration)


@dataclass(frozen=True)
class ReleaseContext:
    """What the release path needs from the running gateway (or the report job)."""

    store: Store
    ledger: Ledger
    audit: AuditLog
    partners: dict[str, Partner]
    query_timeout_s: float = 30.0
    admission: Admission = UNLIMITED  # uncached releases in flight and waiting (gateway.busy beyond: before the charge)
    time_quantum_s: float = 0.0  # an uncached release answers at a multiple of this after it started (0: off); see pad_to_quantum


# Identical queries serialize on one of a fixed set of locks (bounded memory in a long-lived
# gateway), so two racing identical requests charge once and share one noisy answer.
_KEY_LOCKS = tuple(threading.Lock() for _ in range(64))


def release_query(ctx: ReleaseContext, policy: Policy, principal: Principal, request: QueryRequest) -> QueryResponse:
    """Authorize, compile, charge, execute, noise, audit and respond (see the module docstring).

    Everything before the charge may refuse (policy, parameters, budget): such a refusal costs
    nothing and is audited as ``query.refused``. After the charge, a failure is audited as that
    query's outcome (its epsilon is spent).
    """
    template = request.template or "sql"
    params = {"sql": request.sql} if request.sql is not None else dict(request.params)
    try:
        plan = _plan(ctx, policy, principal, template, params, request.epsilon)
    except CleanroomError as exc:
        _audit_refused(ctx, policy, principal, request, params, exc)
        raise
    with _lock_for(plan.key):  # held until the result is stored: identical racing requests charge once
        hit = ctx.ledger.cached(plan.key)
        if hit is not None:
            return _from_cache(ctx, policy, principal, plan, hit)
        query_id = "q_" + secrets.token_hex(8)
        try:
            ctx.admission.acquire()  # a slot, or gateway.busy: decided before anything is charged
        except CleanroomError as exc:
            _audit_refused(ctx, policy, principal, request, params, exc)
            raise
        try:
            charge = ctx.ledger.charge(collaboration=policy.collaboration, partner=principal.partner,
                                       month=plan.now.strftime("%Y-%m"), epsilon=plan.epsilon, **budget_limits(policy),
                                       purpose="query", query_id=query_id, actor=principal.actor)
        except CleanroomError as exc:
            ctx.admission.release()
            _audit_refused(ctx, policy, principal, request, params, exc)
            raise
        started = time.monotonic()
        try:
            return _run_charged(ctx, policy, principal, plan, query_id, charge)
        finally:
            ctx.admission.release()  # the padding below holds no slot: it costs the server nothing
            pad_to_quantum(started, ctx.time_quantum_s)


def pad_to_quantum(started: float, quantum_s: float, *, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> float:
    """Sleep until the time since ``started`` is a whole multiple of ``quantum_s``; returns the padded duration.

    Why: how long a release takes depends on the data it reads, so a partner who adds rows for
    one person could read that person's presence from another partner's response times (an
    uncached funnel went from 29 to 66 ms after 10,000 rows were added for one person). Padded,
    a response time reveals only how many quanta the release took: a difference smaller than
    one quantum is hidden unless it crosses a boundary, and the per-person row bound keeps what
    one person adds to a scan small. Cached answers are not padded: they read no data.
    """
    if quantum_s <= 0:
        return clock() - started
    elapsed = clock() - started
    target = max(1, math.ceil(elapsed / quantum_s)) * quantum_s
    if target > elapsed:
        sleep(target - elapsed)
    return target


def _audit_refused(ctx: ReleaseContext, policy: Policy, principal: Principal, request: QueryRequest, params: dict[str, Any],
                   exc: CleanroomError) -> None:
    ctx.audit.append("query.refused", principal.actor, {
        "collaboration": policy.collaboration, "partner": principal.partner, "template": request.template or "sql",
        "params": bounded_params(params), "epsilon": str(request.epsilon), "code": exc.code,
    })


AUDIT_PARAMS_MAX_BYTES = 2048


def bounded_params(params: dict[str, Any]) -> Any:
    """Parameters as the audit log keeps them: verbatim up to 2 KB, else their digest and size.

    Why: a refused query costs no epsilon, so without a bound anyone with a key could grow the log
    by megabytes per request (20 refused funnels with 1 MB filter lists added 22 MB).
    """
    text = canonical_json(params)
    if len(text) <= AUDIT_PARAMS_MAX_BYTES:
        return params
    return {"sha256": sha256_hex(text), "bytes": len(text), "keys": sorted(params)[:20]}


@dataclass(frozen=True)
class _Plan:
    """A request that passed every check and may be charged: what it reads and its cache key."""

    scope: Scope
    compiled: CompiledQuery
    epsilon: Epsilon
    threshold: int
    key: str
    now: datetime


def _plan(ctx: ReleaseContext, policy: Policy, principal: Principal, template: str, params: dict[str, Any],
          epsilon_value: float) -> _Plan:
    rule = authorize(policy, principal, template)
    epsilon = Epsilon.parse(epsilon_value)
    now = datetime.now(UTC)
    scope = build_scope(policy, ctx.partners, principal.partner_role, rule, now, consent_applied=True, stored=ctx.store.active_versions())
    compiled = compile_query(template, params, scope)
    require_uploaded(ctx, compiled)
    rules = effective_rules(policy, ctx.partners, compiled.datasets)
    check_effective(rules, compiled.dimensions, epsilon, template)
    key = _cache_key(ctx, policy, scope, compiled, epsilon, rules.min_threshold, _consent_horizon(ctx, scope, compiled))
    return _Plan(scope=scope, compiled=compiled, epsilon=epsilon, threshold=rules.min_threshold, key=key, now=now)


def _run_charged(ctx: ReleaseContext, policy: Policy, principal: Principal, plan: _Plan, query_id: str, charge: Any,
                 owner: str | None = None) -> QueryResponse:
    """Execute, noise, store and audit a query whose epsilon is already committed.

    ``owner`` is whose ``GET /v1/queries/{id}`` may fetch the result again (default: the caller's
    partner). Report sections belong to the report account, so no partner's analysts can fetch a
    section the policy does not send them.
    """
    scope, compiled = plan.scope, plan.compiled
    try:
        with ctx.store.reader(_consented_views(scope, compiled), timeout_s=ctx.query_timeout_s, consent_at=scope.now) as con:
            _check_bound_still_identity(ctx, scope, compiled)
            exact = execute(compiled, con)
        noisy = dp.release(exact, plan.epsilon.fraction, threshold=plan.threshold, mechanism=policy.privacy.mechanism,
                           delta=policy.privacy.delta)
    except CleanroomError as exc:
        _audit_query(ctx, policy, principal, compiled, plan.epsilon, query_id, outcome=exc.code)
        raise
    payload = {"collaboration": policy.collaboration, **_payload(noisy)}
    ctx.ledger.store_result(plan.key, query_id, owner or principal.partner, payload)
    _audit_query(ctx, policy, principal, compiled, plan.epsilon, query_id, outcome="released", digest=sha256_hex(canonical_json(payload)))
    return _response(query_id, payload, float(charge.epsilon.fraction), float(charge.partner_remaining.fraction), cached=False)


def _from_cache(ctx: ReleaseContext, policy: Policy, principal: Principal, plan: _Plan, payload: dict[str, Any]) -> QueryResponse:
    """An identical query: the same stored noisy numbers, no fresh noise, no new charge."""
    query_id = "q_" + secrets.token_hex(8)
    ctx.ledger.link_query(plan.key, query_id, principal.partner)
    _audit_query(ctx, policy, principal, plan.compiled, plan.epsilon, query_id, outcome="cached",
                 digest=sha256_hex(canonical_json(payload)))
    remaining = _remaining(ctx, policy, principal)
    return _response(query_id, payload, 0.0, remaining, cached=True)


# --- the monthly report's sections ----------------------------------------------------------------


def release_report_section(ctx: ReleaseContext, policy: Policy, principal: Principal, month: str, name: str) -> QueryResponse:
    """Release one section of ``month``'s report ONCE for the collaboration, through the same steps.

    The section is computed in the report's scope (every join the policy approves for any role:
    the ``report`` block, signed by every partner, is the permission to release it to the
    recipients it names), charged once to the collaboration's report account against the
    reservation of ``month``, and stored under a key of (policy, month, section): a re-run of the
    month, by any report key, gets the stored numbers back without a new charge.
    """
    section, params = _report_section(policy, principal, month, name)
    request = QueryRequest(collaboration=policy.collaboration, template=section.template, params=params, epsilon=float(section.epsilon))
    try:
        plan = _report_plan(ctx, policy, section, params, month)
    except CleanroomError as exc:
        _audit_refused(ctx, policy, principal, request, params, exc)
        raise
    reserve = Epsilon.parse(policy.privacy.report_reservation)
    with _lock_for(plan.key):
        hit = ctx.ledger.cached(plan.key)
        if hit is not None:
            return _report_from_cache(ctx, policy, principal, plan, hit, month, reserve)
        query_id = "q_" + secrets.token_hex(8)
        try:
            charge = ctx.ledger.charge(collaboration=policy.collaboration, partner=REPORT_ACCOUNT, month=month, epsilon=plan.epsilon,
                                       partner_budget=reserve, collaboration_cap=Epsilon.parse(policy.privacy.collaboration_monthly_cap),
                                       report_reserve=reserve, purpose="report", query_id=query_id, actor=principal.actor)
        except CleanroomError as exc:
            _audit_refused(ctx, policy, principal, request, params, exc)
            raise
        response = _run_charged(ctx, policy, principal, plan, query_id, charge, owner=REPORT_ACCOUNT)
    ctx.audit.append("report.section", principal.actor, {
        "collaboration": policy.collaboration, "policy": content_hash(policy), "month": month, "section": name,
        "recipients": (policy.report.recipients_of(section) if policy.report else []), "query_id": response.query_id,
        "epsilon": str(plan.epsilon), "partners": sorted({d.split(".", 1)[0] for d in plan.compiled.datasets}),
    })
    return response


def _report_from_cache(ctx: ReleaseContext, policy: Policy, principal: Principal, plan: _Plan, payload: dict[str, Any], month: str,
                       reserve: Epsilon) -> QueryResponse:
    """A re-run: the stored section under the query id of its first release (so a re-run's files are the same)."""
    query_id = ctx.ledger.first_query_id(plan.key) or "q_" + secrets.token_hex(8)
    _audit_query(ctx, policy, principal, plan.compiled, plan.epsilon, query_id, outcome="cached", digest=sha256_hex(canonical_json(payload)))
    left = ctx.ledger.remaining(collaboration=policy.collaboration, partner=REPORT_ACCOUNT, month=month, partner_budget=reserve,
                                collaboration_cap=Epsilon.parse(policy.privacy.collaboration_monthly_cap), report_reserve=reserve, purpose="report")
    return _response(query_id, payload, 0.0, float(left.partner.fraction), cached=True)


def _report_section(policy: Policy, principal: Principal, month: str, name: str) -> tuple[Any, dict[str, Any]]:
    """The section ``name`` of the active report block for a complete ``month``, with its month's parameters."""
    from cleanroom.reports.months import is_complete, section_params

    if principal.role != "report":
        raise AuthError("auth.forbidden", "only report keys run the monthly report's sections")
    section = policy.report.section(name) if policy.report else None
    if section is None:
        known = ", ".join(s.name for s in policy.report.sections) if policy.report else "none: the policy has no report block"
        raise PolicyError("policy.report_section_unknown", f"policy {policy.collaboration} has no report section {name!r} (sections: {known})",
                          section=name)
    if not is_complete(month):
        raise QueryError("query.invalid_params", f"month {month} is not complete yet: a report covers a whole calendar month (UTC)", field="month")
    months = policy.domain("month") if "month" in policy.dimensions else []
    return section, section_params(section.template, dict(section.params), list(section.dimensions), month, months)


def _report_plan(ctx: ReleaseContext, policy: Policy, section: Any, params: dict[str, Any], month: str) -> _Plan:
    """Compile a section in the report's scope; its cache key names the month and section, not the caller."""
    rule = policy.template_rule(section.template)
    epsilon = Epsilon.parse(section.epsilon)
    now = datetime.now(UTC)
    joins = frozenset(pair for role in ("brand", "dealer", "finance") for pair in policy.joins_for(role))
    scope = build_scope(policy, ctx.partners, "report", rule, now, consent_applied=True, stored=ctx.store.active_versions(),
                        approved_joins=joins)
    compiled = compile_query(section.template, params, scope)
    require_uploaded(ctx, compiled)
    rules = effective_rules(policy, ctx.partners, compiled.datasets)
    check_effective(rules, compiled.dimensions, epsilon, section.template)
    key = sha256_hex(canonical_json({"report": policy.collaboration, "policy": content_hash(policy), "month": month,
                                     "section": section.model_dump(mode="json"), "threshold": rules.min_threshold}))
    return _Plan(scope=scope, compiled=compiled, epsilon=epsilon, threshold=rules.min_threshold, key=key, now=now)


# --- authorization and scope ---------------------------------------------------------------------


def authorize(policy: Policy, principal: Principal, template: str) -> TemplateRule:
    if principal.role == "report":
        raise AuthError("auth.forbidden", "a report key runs only the monthly report's sections (POST /v1/reports/...), not ad hoc queries")
    if principal.role not in QUERY_ROLES:
        raise AuthError("auth.forbidden", f"role {principal.role!r} may not run queries (analyst keys only)")
    rule = policy.template_rule(template)
    if principal.partner_role not in rule.roles:
        raise PolicyError(
            "policy.template_not_allowed",
            f"policy {policy.collaboration} grants template {template!r} to {', '.join(rule.roles)} analysts, not {principal.partner_role}",
            template=template,
        )
    if principal.partner not in rule.recipients:
        raise PolicyError(
            "policy.template_not_allowed",
            f"policy {policy.collaboration} does not list {principal.partner} among the recipients of {template!r} results",
            template=template,
        )
    return rule


def build_scope(policy: Policy, partners: dict[str, Partner], partner_role: str, rule: TemplateRule, now: datetime, *,
                consent_applied: bool = False, stored: Mapping[str, DatasetVersion] | None = None,
                approved_joins: frozenset[frozenset[str]] | None = None) -> Scope:
    """Translate the active policy into the engine's entitlements for one caller and template.

    ``consent_applied=True`` (what :func:`release_query` uses) promises the engine that its views
    will hold consented rows only, which :func:`_consented_views` then has the store provide.
    ``stored`` (the store's active versions) gives each dataset the most rows one person has in
    it, recorded at publish time, so the engine can leave out a row bound that cannot bind;
    without it every bound stays (same answers, only slower).
    """
    refs: dict[str, DatasetRef] = {}
    for qualified in policy.datasets:
        owner, name = qualified.split(".", 1)
        partner = partners[owner]
        columns = {c: col.tag for c, col in partner.dataset(name).columns.items() if col.tag not in ("private", "join_key")}
        most = stored[qualified].max_rows_per_person if stored and qualified in stored else None
        refs[qualified] = DatasetRef(partner=owner, partner_role=partner.role, dataset=name, view=view_name(qualified), columns=columns,
                                     max_rows_per_person=most)
    return Scope(
        datasets=refs,
        consent_purposes=list(rule.consent),
        domains={d: policy.domain(d) for d in rule.dimensions},
        measure_bounds={q: (b.min, b.max) for q, b in policy.measures.items()},
        max_groups_per_person=policy.privacy.max_groups_per_person,
        max_rows_per_person=policy.privacy.max_rows_per_person,
        approved_joins=policy.joins_for(partner_role) if approved_joins is None else approved_joins,
        filterable_columns=frozenset(c for c in policy.filterable if c in rule.dimensions),
        now=now,
        consent_applied=consent_applied,
    )


def require_uploaded(ctx: ReleaseContext, compiled: CompiledQuery) -> None:
    """Refuse BEFORE the charge a query over a dataset nobody has uploaded yet.

    The store would refuse it too, but only once the reader opens, after the epsilon was spent:
    a report section over a missing dataset was charged on every retry and the month could never
    be completed. Which datasets exist is catalog metadata, known to every partner's operator.
    """
    active = ctx.store.active_versions()
    missing = [q for q in compiled.datasets if q not in active]
    if missing:
        raise QueryError("query.dataset_missing", f"{', '.join(missing)} has not been uploaded yet; nothing was charged", datasets=missing)


def _consented_views(scope: Scope, compiled: Any) -> dict[str, ViewSource]:
    """The views the statement reads: each non-consent dataset as its consented rows at ``scope.now``.

    Only the datasets the compiled statement names (least privilege; a consent dataset is not
    read by a ``consent_applied`` statement, its consent is already in the rows). The store keeps
    one consented table per (dataset version, consent version, purposes, consent horizon), so a
    new upload or a grant/revocation whose time has come gives the next query fresh rows.
    """
    purposes = tuple(sorted(set(scope.consent_purposes))) if scope.consent_applied else ()
    views: dict[str, ViewSource] = {}
    for qualified in compiled.datasets:
        ref = scope.datasets[qualified]
        if not purposes:
            views[ref.view] = qualified
        elif not ref.is_consent:
            views[ref.view] = (qualified, purposes)
    return views


def _check_bound_still_identity(ctx: ReleaseContext, scope: Scope, compiled: Any) -> None:
    """Refuse to run a statement compiled without a row bound if the data changed since compile time.

    The views were created from the active versions when the reader opened; an upload between
    :func:`build_scope` and then could have brought a person above the bound. Checked after the
    views exist: a later upload drops the table the views read, so the statement fails instead.
    """
    active = ctx.store.active_versions()
    for qualified in compiled.datasets:
        ref = scope.datasets[qualified]
        if ref.max_rows_per_person is None or ref.max_rows_per_person > scope.max_rows_per_person:
            continue
        now_most = active[qualified].max_rows_per_person if qualified in active else None
        if now_most is None or now_most > scope.max_rows_per_person:
            log.warning("%s was re-uploaded while a query over it was being prepared; refusing the stale statement", qualified)
            raise QueryError("query.failed", "a dataset changed while the query was being prepared; send it again")


def check_effective(rules: Any, dimensions: list[str], epsilon: Epsilon, template: str) -> None:
    """The strictest rule among the data owners binds: epsilon cap and groupable dimensions."""
    if epsilon.fraction > rules.max_epsilon_per_query:
        who = ", ".join(rules.binding["max_epsilon_per_query"])
        raise PolicyError(
            "policy.epsilon_above_cap",
            f"epsilon {epsilon} exceeds the per-query cap {float(rules.max_epsilon_per_query):g} set by {who}",
            cap=float(rules.max_epsilon_per_query),
        )
    for dim in dimensions:
        if dim not in rules.dimensions:
            raise PolicyError("policy.dimension_not_allowed", f"{template}: a data owner does not allow grouping by {dim!r}", dimension=dim)


# --- cache, payload, audit -----------------------------------------------------------------------


def _cache_key(ctx: ReleaseContext, policy: Policy, scope: Scope, compiled: Any, epsilon: Epsilon, threshold: int,
               horizon: str | None) -> str:
    """Same policy version, caller scope, parameters, epsilon, threshold, data versions and consent state: the same release.

    The caller's scope is in the key, not just the template and parameters: what a caller may
    compute depends on its role (a dealer may not join sales with contracts), so a result computed
    in one scope must never be served to a caller whose scope differs. The clock is not: consent
    changes by the clock are covered by ``horizon``.
    """
    return sha256_hex(canonical_json({
        "policy": content_hash(policy),
        "scope": _scope_fingerprint(scope),
        "template": compiled.template,
        "params": compiled.params,
        "parts": [p.model_dump(mode="json") for p in compiled.parts],
        "threshold": threshold,
        "epsilon": str(epsilon),
        "data": ctx.store.data_version_token(compiled.datasets),
        "consent_until": horizon,
    }))


def _scope_fingerprint(scope: Scope) -> str:
    """A canonical digest of everything in a scope that shapes compilation (all but the clock)."""
    data = scope.model_dump(mode="json", exclude={"now", "approved_joins", "filterable_columns"})
    data["approved_joins"] = sorted(sorted(pair) for pair in scope.approved_joins)
    data["filterable_columns"] = sorted(scope.filterable_columns)
    return sha256_hex(canonical_json(data))


def _consent_horizon(ctx: ReleaseContext, scope: Scope, compiled: Any) -> str | None:
    """When the consent this query reads next changes by the clock (a grant or revocation dated later).

    Memoized per consent version: for fixed consent data the next change after ``now`` stays the
    same until ``now`` reaches it, so it is recomputed only after an upload or once it has passed.
    """
    consent = sorted(q for q in compiled.datasets if scope.datasets[q].is_consent)
    if not consent:
        return None
    token = ctx.store.data_version_token(consent)
    with _horizons_guard:
        known = _horizons.get(token)
    if known is not None and (known[0] is None or scope.now < known[0]):
        return None if known[0] is None else known[0].isoformat()
    views = {view_name(q): q for q in consent}
    with ctx.store.reader(views, timeout_s=ctx.query_timeout_s) as con:
        row = con.execute(consent_horizon_sql(scope, consent)).fetchone()
    horizon = None if row is None or row[0] is None else row[0].replace(tzinfo=UTC)
    with _horizons_guard:
        if len(_horizons) > 1024:
            _horizons.clear()
        _horizons[token] = (horizon,)
    return None if horizon is None else horizon.isoformat()


_horizons: dict[str, tuple[datetime | None]] = {}
_horizons_guard = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    return _KEY_LOCKS[int(key[:8], 16) % len(_KEY_LOCKS)]


def _payload(noisy: Any) -> dict[str, Any]:
    """The stored, releasable form: presented rows (noisy, post-processed) and how they were made."""
    shown = present(noisy)
    rows = [[row.get(c) for c in shown.columns] for row in shown.rows]
    suppressed = sum(len(row.get("suppressed_values") or []) for row in shown.rows)
    noise = [{"part": p.name, "mechanism": p.mechanism, "scale": p.scale / p.unit, "ci95": p.ci95 / p.unit} for p in noisy.parts]
    return {"template": noisy.template, "columns": shown.columns, "rows": rows, "noise": noise,
            "suppressed_cells": suppressed, "notes": list(shown.notes), "epsilon": noisy.epsilon}


def _response(query_id: str, payload: dict[str, Any], charged: float, remaining: float, *, cached: bool) -> QueryResponse:
    return QueryResponse(
        query_id=query_id, template=payload["template"], columns=payload["columns"], rows=payload["rows"],
        epsilon_charged=charged, budget_remaining=remaining, noise=[NoiseInfo(**n) for n in payload["noise"]],
        suppressed_cells=payload["suppressed_cells"], cached=cached, notes=list(payload.get("notes") or []),
    )


def _remaining(ctx: ReleaseContext, policy: Policy, principal: Principal) -> float:
    left = ctx.ledger.remaining(collaboration=policy.collaboration, partner=principal.partner,
                                month=datetime.now(UTC).strftime("%Y-%m"), **budget_limits(policy), purpose="query")
    return float(left.partner.fraction)


def budget_limits(policy: Policy) -> dict[str, Epsilon]:
    """The budgets of a partner's ad hoc queries, as the ledger's exact values (keyword arguments of charge/remaining).

    The report is charged once for the collaboration (to ``REPORT_ACCOUNT``), never to a partner,
    so the reservation is held back from the collaboration cap only (``collaboration_reserve``);
    a partner's own budget has nothing reserved in it (``report_reserve`` 0).
    """
    p = policy.privacy
    return {
        "partner_budget": Epsilon.parse(p.monthly_budget_per_partner),
        "collaboration_cap": Epsilon.parse(p.collaboration_monthly_cap),
        "report_reserve": Epsilon.zero(),
        "collaboration_reserve": Epsilon.parse(p.report_reservation),
    }


def _audit_query(ctx: ReleaseContext, policy: Policy, principal: Principal, compiled: Any, epsilon: Epsilon, query_id: str,
                 *, outcome: str, digest: str | None = None) -> None:
    """Who asked what, on whose data, at what epsilon, and a digest of what was released (never numbers)."""
    owners = sorted({d.split(".", 1)[0] for d in compiled.datasets})
    ctx.audit.append("query", principal.actor, {
        "query_id": query_id, "collaboration": policy.collaboration, "policy": content_hash(policy),
        "partner": principal.partner, "partners": owners, "template": compiled.template, "params": bounded_params(compiled.params),
        "datasets": compiled.datasets, "epsilon": str(epsilon), "outcome": outcome, "result_digest": digest,
    }, sync=outcome != "cached")  # a cached answer releases nothing new: see AuditLog.append


__all__ = ["REPORT_ACCOUNT", "ReleaseContext", "authorize", "budget_limits", "build_scope", "check_effective", "release_query", "release_report_section"]
