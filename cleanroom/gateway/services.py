"""``Services``: the one object routes get their work done through (``app.state.services``).

Routes only parse, authorize and serialize; every decision about data lives behind these
methods. The release path (policy -> engine -> budget -> dp -> audit) is wired here and only
here, so the API, the CLI and the monthly report share it. Until its modules land, the methods
that need it raise ``NotImplementedError``, which the gateway renders as ``internal.invariant``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanroom.audit import AuditLog, Entry
from cleanroom.gateway.auth import ApiKeys, Principal
from cleanroom.gateway.config import GatewayConfig
from cleanroom.gateway.models import AuditEntryOut, AuditPage, BudgetResponse, PolicyResponse, QueryRequest, QueryResponse, UploadResponse
from cleanroom.partners import Partner, load_partners
from cleanroom.settings import GatewaySecrets

AUDIT_FILE = "audit.jsonl"
INCOMING_DIR = "incoming"


class Services:
    """Long-lived state of one gateway process: partners, secrets, keys, audit log (and later the store)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.partners: dict[str, Partner] = load_partners(config.partners)
        self.secrets = GatewaySecrets.load(config.keys_file)
        config.store.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(config.store / AUDIT_FILE)
        self.keys = ApiKeys(config.store, self.partners, self.audit)

    @property
    def incoming(self) -> Path:
        """Where uploads are staged (inside the store, so the ingest swap stays on one file system)."""
        path = self.config.store / INCOMING_DIR
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    # --- the release path: wired by the lead once policy/engine/budget/dp land ------------------

    def release_query(self, principal: Principal, request: QueryRequest) -> QueryResponse:
        """Authorize -> compile -> charge budget -> execute -> noise -> audit -> respond, in one place."""
        raise NotImplementedError("release path not wired yet")

    def get_query(self, principal: Principal, query_id: str) -> QueryResponse:
        """A stored noisy result, only if it was released to ``principal.partner`` (else ``query.not_found``)."""
        raise NotImplementedError("query store not wired yet")

    def budget(self, principal: Principal, collaboration: str) -> BudgetResponse:
        """The ledger's view of ``principal.partner``'s budget this month."""
        raise NotImplementedError("budget ledger not wired yet")

    def upload(self, principal: Principal, dataset: str, arrow_path: Path, manifest_path: Path) -> UploadResponse:
        """Validate and swap in a staged upload (``ingest_upload(..., actor=principal.actor, audit=self.audit)``)."""
        raise NotImplementedError("ingest not wired yet")

    def policy(self, principal: Principal, collaboration: str) -> PolicyResponse:
        """The active policy of ``collaboration`` (``policy.not_active`` when none is)."""
        raise NotImplementedError("policies not wired yet")

    # --- audit: needs nothing but the log ---------------------------------------------------------

    def audit_page(self, principal: Principal, after: int | None, limit: int) -> AuditPage:
        """Entries made by ``principal.partner`` or naming it as data owner, after seq ``after``."""
        limit = min(limit, self.config.limits.audit_page_max)
        report = self.audit.verify()
        visible = (e for e in self.audit.entries() if (after is None or e.seq > after) and visible_to(e, principal.partner))
        page: list[AuditEntryOut] = []
        for entry in visible:
            if len(page) == limit:
                return _page(page, report.ok, report.entries, report.head, page[-1].seq)
            page.append(AuditEntryOut(**entry.model_dump()))
        return _page(page, report.ok, report.entries, report.head, None)

    def close(self) -> None:
        """Release what the process holds (the store, once wired)."""


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
