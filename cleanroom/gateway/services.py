"""``Services``: the one object routes get their work done through (``app.state.services``).

Routes only parse, authorize and serialize; every decision about data lives behind these
methods. The release path (policy -> engine -> budget -> dp -> audit) is wired here and only
here, so the API, the CLI and the monthly report share it. Until its modules land, the methods
that need it raise ``NotImplementedError``, which the gateway renders as ``internal.invariant``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleanroom.audit import AuditLog, Entry
from cleanroom.budget import Epsilon, Ledger, summarize
from cleanroom.budget.ledger import SCHEMA as LEDGER_SCHEMA
from cleanroom.errors import CleanroomError, InternalError, PolicyError, QueryError, StoreError
from cleanroom.gateway.release import REPORT_ACCOUNT, ReleaseContext, budget_limits, release_query, release_report_section
from cleanroom.ingest import ingest_upload
from cleanroom.gateway.admission import Admission
from cleanroom.integrity import guard_store
from cleanroom.policy import Policy, active_policy, active_record, content_hash
from cleanroom.store import DB_FILE, Store
from cleanroom.store.faults import StoreHealth, check_sqlite_schema, probe_write, storage_fault
from cleanroom.gateway.auth import ApiKeys, Principal
from cleanroom.gateway.config import GatewayConfig
from cleanroom.gateway.models import (
    AuditEntryOut,
    AuditPage,
    BudgetResponse,
    DatasetFreshness,
    ExplainRequest,
    ExplainResponse,
    PolicyResponse,
    QueryRequest,
    QueryResponse,
    ReportPlan,
    ReportRecipient,
    ReportSectionPlan,
    UploadResponse,
)
from cleanroom.partners import Partner, load_partners
from cleanroom.settings import GatewaySecrets

AUDIT_FILE = "audit.jsonl"
INCOMING_DIR = "incoming"
LEDGER_FILE = "budget.sqlite"
ANCHOR_DELAY_S = 0.2  # the anchor moves at most five times a second under load (cleanroom.integrity.Anchor.refresh)


class Services:
    """Long-lived state of one gateway process: partners, secrets, keys, audit log (and later the store)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.partners: dict[str, Partner] = load_partners(config.partners)
        self.secrets = GatewaySecrets.load(config.keys_file)
        # what GET /healthz reports; every storage fault met while serving is recorded here (cleanroom.store.faults)
        self.health = StoreHealth(config.store)
        # start checks: each storage fault becomes one store.* error naming the file (cleanroom serve prints one line)
        with _storage(config.store):
            config.store.mkdir(parents=True, exist_ok=True)
            probe_write(config.store)  # a read-only or full store is refused now, not on the first charge
        self.audit = AuditLog(config.store / AUDIT_FILE)
        with _storage(config.store / "gateway.sqlite"):
            self.keys = ApiKeys(config.store, self.partners, self.audit)
        self.keys.on_fault = self.health.fault
        self.store = Store.open(config.store, self.secrets)
        try:
            with _storage(config.store / DB_FILE):
                self.store.active_versions()  # the catalog reads
            with _storage(config.store / LEDGER_FILE, "the budget ledger"):
                self.ledger = Ledger(config.store / LEDGER_FILE)
                check_sqlite_schema(self.ledger.path, LEDGER_SCHEMA, "budget ledger")
            # refuse to start on a lost, rolled-back or swapped ledger or audit log (store.integrity); re-anchor on every commit
            with _storage(config.store / AUDIT_FILE):
                self.anchor = guard_store(config.store, self.ledger, self.audit, self.secrets, delay_s=ANCHOR_DELAY_S)
        except BaseException:
            self.store.close()
            raise
        # a durable commit (charge, stored result, audit append) also clears a store.full / store.unavailable
        self.ledger.on_commit = _clearing(self.health, self.ledger.on_commit)
        self.audit.on_commit = _clearing(self.health, self.audit.on_commit)
        limits = config.limits
        self.release_context = ReleaseContext(
            store=self.store, ledger=self.ledger, audit=self.audit, partners=self.partners, query_timeout_s=limits.query_timeout_s,
            admission=Admission(limits.max_queries_in_flight, limits.max_queries_queued), time_quantum_s=limits.release_time_quantum_s,
        )

    @property
    def incoming(self) -> Path:
        """Where uploads are staged (inside the store, so the ingest swap stays on one file system)."""
        path = self.config.store / INCOMING_DIR
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    # --- the release path ----------------------------------------------------------------------

    def _active(self, collaboration: str) -> Policy:
        """The active, fully signed, in-validity policy (re-checked on every use: edits bite at once)."""
        return active_policy(collaboration, self.config.policies, self.config.store, self.partners)

    def release_query(self, principal: Principal, request: QueryRequest) -> QueryResponse:
        """Authorize -> compile -> charge budget -> execute -> noise -> audit -> respond, in one place."""
        self.health.require_intact()  # after a damaged block: refused before anything is charged
        return release_query(self.release_context, self._active(request.collaboration), principal, request)

    def explain_query(self, principal: Principal, request: ExplainRequest) -> ExplainResponse:
        """The plan and expected accuracy of a query; nothing is charged and no data is read."""
        from cleanroom.gateway.explain import explain_query

        return explain_query(self.release_context, self._active(request.collaboration), principal, request)

    def report_plan(self, principal: Principal, collaboration: str, month: str) -> ReportPlan:
        """The month's sections (parameters resolved for the month), recipients, spend so far, and data freshness."""
        from cleanroom.reports.months import is_complete, parse_month, section_params

        parse_month(month)
        policy = self._active(collaboration)
        if policy.report is None:
            raise PolicyError("policy.report_section_unknown", f"policy {collaboration} defines no monthly report (no report: block)")
        months = policy.domain("month") if "month" in policy.dimensions else []
        sections = []
        for s in policy.report.sections:
            try:
                params = section_params(s.template, dict(s.params), list(s.dimensions), month, months)
            except CleanroomError:
                params = dict(s.params)
            sections.append(ReportSectionPlan(name=s.name, title=s.title or s.name.replace("_", " ").capitalize(), template=s.template,
                                              dimensions=list(s.dimensions), params=params, epsilon=str(Epsilon.parse(s.epsilon)),
                                              recipients=policy.report.recipients_of(s)))
        return ReportPlan(
            collaboration=collaboration, month=month, complete=is_complete(month), policy_hash=content_hash(policy),
            reservation=str(Epsilon.parse(policy.privacy.report_reservation)),
            spent=str(self.ledger.spent(collaboration, REPORT_ACCOUNT, month, "report")),
            recipients=[ReportRecipient(partner=p, role=self.partners[p].role) for p in policy.report.recipients],
            sections=sections, freshness=self._freshness(policy, month),
        )

    def _freshness(self, policy: Policy, month: str) -> list[DatasetFreshness]:
        """Per dataset in scope: its active version, and whether it was uploaded after the month ended."""
        from cleanroom.reports.months import add_months, parse_month

        ended = datetime.combine(add_months(parse_month(month), 1), datetime.min.time(), tzinfo=UTC)
        active = self.store.active_versions()
        out = []
        for qualified in policy.datasets:
            partner, dataset = qualified.split(".", 1)
            v = active.get(qualified)
            if v is None:
                out.append(DatasetFreshness(partner=partner, dataset=dataset, version=None, uploaded_at=None, status="missing",
                                            detail=f"{partner} has never uploaded {dataset}"))
                continue
            uploaded = v.uploaded_at if v.uploaded_at.tzinfo else v.uploaded_at.replace(tzinfo=UTC)
            status, detail = "ok", ""
            if v.rows == 0:
                status, detail = "empty", f"{partner}'s active version {v.version} of {dataset} has no rows"
            elif uploaded < ended:
                status, detail = "stale", f"{partner} last uploaded {dataset} on {uploaded:%Y-%m-%d}, before {month} ended"
            out.append(DatasetFreshness(partner=partner, dataset=dataset, version=v.version, uploaded_at=uploaded, status=status, detail=detail))
        return out

    def report_section(self, principal: Principal, collaboration: str, month: str, name: str) -> QueryResponse:
        """Release (or return the stored release of) one section of ``month``'s report."""
        from cleanroom.reports.months import parse_month

        parse_month(month)
        self.health.require_intact()
        return release_report_section(self.release_context, self._active(collaboration), principal, month, name)

    def get_query(self, principal: Principal, query_id: str) -> QueryResponse:
        """A stored noisy result, only if it was released to ``principal.partner`` (else ``query.not_found``)."""
        stored = self.ledger.get_result(query_id)
        if stored is None or stored.partner != principal.partner:
            raise QueryError("query.not_found", f"no query {query_id!r} was released to {principal.partner}")
        p = stored.payload
        return QueryResponse(
            query_id=query_id, template=p["template"], columns=p["columns"], rows=p["rows"], epsilon_charged=0.0,
            budget_remaining=self._remaining_or_zero(principal, p["collaboration"]),
            noise=p["noise"], suppressed_cells=p["suppressed_cells"], cached=True, notes=list(p.get("notes") or []),
        )

    def _remaining_or_zero(self, principal: Principal, collaboration: str) -> float:
        """Budget left now; 0 when the collaboration no longer has an active policy (the result stays readable)."""
        try:
            return self.budget(principal, collaboration).partner_remaining
        except CleanroomError:
            return 0.0

    def budget(self, principal: Principal, collaboration: str) -> BudgetResponse:
        """The ledger's view of ``principal.partner``'s budget this month."""
        policy = self._active(collaboration)
        month = datetime.now(UTC).strftime("%Y-%m")
        limits = budget_limits(policy)
        left = self.ledger.remaining(collaboration=collaboration, partner=principal.partner, month=month, **limits)
        summary = summarize(self.ledger.path, collaboration, month)
        spent_all = summary.months[0].spent if summary.months else Epsilon.zero()
        return BudgetResponse(
            collaboration=collaboration, partner=principal.partner, period=month,
            partner_limit=float(limits["partner_budget"].fraction),
            partner_spent=float(self.ledger.spent(collaboration, principal.partner, month).fraction),
            partner_remaining=float(left.partner.fraction), reserved_for_report=float(limits["collaboration_reserve"].fraction),
            collaboration_cap=float(limits["collaboration_cap"].fraction), collaboration_spent=float(spent_all.fraction),
            collaboration_remaining=float(left.collaboration.fraction),
            lifetime_epsilon=float(self.ledger.lifetime(collaboration).fraction),
        )

    def upload(self, principal: Principal, dataset: str, arrow_path: Path, manifest_path: Path) -> UploadResponse:
        """Validate and swap in a staged upload with the same code as ``cleanroom admin ingest``.

        The same signed upload again answers with its version (``replayed``; an older one is made
        active again, ``rolled_back_from``): see ``cleanroom.ingest``. Still HTTP 201 (the route's status).
        """
        self.health.require_intact()
        try:
            result = ingest_upload(self.store, self.config.partners, principal.partner, arrow_path, manifest_path,
                                   actor=principal.actor, audit=self.audit)
        except CleanroomError as exc:
            raise _without_staging_path(exc, arrow_path.parent) from None
        if result.dataset != dataset:
            raise InternalError("internal.invariant", f"manifest dataset {result.dataset!r} != route {dataset!r}")
        return UploadResponse(partner=result.partner, dataset=result.dataset, version=result.version, sha256=result.sha256,
                              replayed=result.replayed, rolled_back_from=result.rolled_back_from, warnings=list(result.warnings))

    def policy(self, principal: Principal, collaboration: str) -> PolicyResponse:
        """The active policy of ``collaboration`` (``policy.not_active`` when none is)."""
        policy = self._active(collaboration)
        record = active_record(self.config.store, collaboration)
        return PolicyResponse(
            collaboration=collaboration, digest=content_hash(policy), active=True,
            signed_by=list(record.signers) if record else [], policy=policy.model_dump(mode="json", by_alias=True),
        )

    # --- audit: needs nothing but the log ---------------------------------------------------------

    def audit_page(self, principal: Principal, after: int | None, limit: int) -> AuditPage:
        """Entries made by ``principal.partner`` or naming it as data owner, after seq ``after``."""
        limit = min(limit, self.config.limits.audit_page_max)
        report = self.audit.verify_incremental()  # the full walk runs at start and in `cleanroom audit verify`
        visible = (e for e in self.audit.entries_after(after) if visible_to(e, principal.partner))
        page: list[AuditEntryOut] = []
        for entry in visible:
            if len(page) == limit:
                return _page(page, report.ok, report.entries, report.head, page[-1].seq)
            page.append(AuditEntryOut(**entry.model_dump()))
        return _page(page, report.ok, report.entries, report.head, None)

    def close(self) -> None:
        """Release what the process holds: a pending anchor move, the store's database handle."""
        anchor = getattr(self, "anchor", None)
        if anchor is not None:
            anchor.close()
        self.store.close()


@contextmanager
def _storage(path: Path, sqlite_what: str | None = None) -> Iterator[None]:
    """Start-up: a storage fault met while opening ``path`` becomes its ``store.*`` error (naming the file).

    With ``sqlite_what``, any other SQLite error (a table without the columns the code creates
    indexes on, say) means the file is not what the gateway writes: ``store.integrity`` too.
    """
    try:
        yield
    except CleanroomError:
        raise
    except Exception as exc:
        fault = storage_fault(exc, path)
        if fault is None and sqlite_what is not None and isinstance(exc, sqlite3.Error):
            fault = StoreError("store.integrity", f"{path}: cannot be opened as {sqlite_what} ({exc}): not the schema this gateway "
                                                  "writes; restore the file from a backup", path=str(path))
        if fault is None:
            raise
        raise fault from None


def _clearing(health: StoreHealth, then: Callable[[], None] | None) -> Callable[[], None]:
    def committed() -> None:
        health.wrote()
        if then is not None:
            then()

    return committed


def _without_staging_path(exc: CleanroomError, staging: Path) -> CleanroomError:
    """The same error, naming files as the partner sent them: the operator's directory layout stays private."""
    prefix = str(staging) + "/"
    exc.message = exc.message.replace(prefix, "")
    exc.args = (exc.message,)
    exc.details = {k: v.replace(prefix, "") if isinstance(v, str) else v for k, v in exc.details.items()}
    return exc


def visible_to(entry: Entry, partner: str) -> bool:
    """Audit visibility: the partner made the entry, or the entry names it as an owner of the data.

    Conventions every writer follows: ``actor`` is ``<partner>`` or ``<partner>/<key_id>`` for
    partner actions; ``details.partner`` (one owner) or ``details.partners`` (several, e.g. the
    datasets a query read) name whose data an entry touched.
    """
    if entry.actor == partner or entry.actor.startswith(partner + "/"):
        return True
    details: dict[str, Any] = entry.details
    owners = details.get("partners")
    return details.get("partner") == partner or (isinstance(owners, list) and partner in owners)


def _page(entries: list[AuditEntryOut], ok: bool, count: int, head: str, next_after: int | None) -> AuditPage:
    return AuditPage(entries=entries, chain_ok=ok, chain_entries=count, chain_head=head, next_after=next_after)


__all__ = ["Services", "visible_to"]
