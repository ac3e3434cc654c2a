"""The one exception tree of cleanroom, and the closed list of stable error codes.

Every failure a user can meet carries a stable ``code`` of the form ``area.reason``. Codes are
part of the public contract: scripts, the HTTP API (RFC 9457 problem+json) and the docs
(``docs/reference/errors.md``, checked by a test) all key on them, so a code is never renamed,
only added. The HTTP status lives here too so that the gateway renders every error the same way
without knowing what raised it.

    CleanroomError                 base; .code, .message, .details, .status
    ├── ConfigError                bad settings, key files, partner files   (config.*, keys.*, partner.*)
    ├── PolicyError                policy files, signatures, activation     (policy.*)
    ├── PrepareError               partner-side preparation                 (prepare.*)
    ├── UploadError                ingest validation                        (upload.*)
    ├── StoreError                 the encrypted store                      (store.*)
    ├── QueryError                 query requests and templates             (query.*)
    ├── BudgetError                privacy budget                           (budget.*)
    ├── AuthError                  API keys and roles                       (auth.*)
    ├── AuditError                 the hash-chained log                     (audit.*)
    └── InternalError              a broken invariant: this is a bug        (internal.*)
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, one-line meaning). Closed: a test checks that every code raised in the
# package is listed here and documented in docs/reference/errors.md.
CODES: dict[str, tuple[int, str]] = {
    # configuration, keys and partner files
    "config.invalid": (500, "A setting is missing or malformed."),
    "config.missing_key": (500, "A required secret (pepper, database key) is not configured."),
    "keys.invalid": (400, "A key file is malformed or has the wrong length."),
    "keys.permissions": (400, "A secret key file is readable by other users."),
    "keys.exists": (409, "Refusing to overwrite an existing key file."),
    "partner.invalid": (400, "A partner file is malformed; the message names the file and key."),
    "partner.unknown": (404, "No partner with that id."),
    "partner.unknown_dataset": (404, "The partner declares no dataset with that name."),
    # policies
    "policy.invalid": (400, "A policy file fails validation; the message names file, line and key."),
    "policy.not_found": (404, "No policy file for that collaboration."),
    "policy.not_active": (409, "The collaboration has no active policy."),
    "policy.unsigned": (409, "Not every participating partner has signed the policy."),
    "policy.signature_invalid": (400, "A policy signature does not verify."),
    "policy.expired": (409, "The policy is outside its validity period."),
    "policy.template_not_allowed": (403, "The policy does not grant this template to the caller's role."),
    "policy.join_not_approved": (403, "The query needs a join the policy does not approve."),
    "policy.dimension_not_allowed": (403, "The dimension is not groupable under the policy."),
    "policy.filter_not_allowed": (403, "The column may not be compared to literals in filters."),
    "policy.epsilon_above_cap": (403, "The requested epsilon exceeds the per-query cap."),
    "policy.dataset_not_in_scope": (403, "The dataset is not in the collaboration's scope."),
    "policy.measure_not_allowed": (403, "The column is not a measure with clamp bounds in the policy."),
    "policy.report_section_unknown": (404, "The active policy has no report block, or no section with that name in it."),
    # partner-side preparation
    "prepare.input_missing": (400, "A raw input file is missing."),
    "prepare.input_invalid": (400, "A raw input file cannot be read or lacks a declared column."),
    "prepare.wrong_key": (400, "The signing key is not the partner's registered uploader key."),
    # uploads
    "upload.signature_invalid": (400, "The manifest signature does not verify against the partner's uploader key."),
    "upload.manifest_invalid": (400, "The manifest is malformed or does not match the file."),
    "upload.replayed": (409, "This manifest (nonce) was already used by this partner for this dataset."),
    "upload.schema_mismatch": (400, "The file's schema differs from the partner's declared schema."),
    "upload.hid_invalid": (400, "A hid value is not 64 lower-case hex characters."),
    "upload.raw_pii_detected": (400, "A column looks like raw personal data (email, phone, name)."),
    "upload.file_invalid": (400, "The Arrow file is truncated or unreadable."),
    "upload.too_large": (413, "The upload exceeds the size limit."),
    "upload.salt_mismatch": (400, "The file was keyed with another salt than the collaboration's (salt fingerprints differ)."),
    "upload.shrinks_dataset": (409, "The upload is empty or far smaller than the active version, and the manifest does not allow it."),
    # store
    "store.locked": (409, "The store is open in another process (is the gateway running?)."),
    "store.key_invalid": (500, "The database encryption key does not open the store."),
    "store.not_found": (404, "No such dataset version in the store."),
    "store.integrity": (503, "The budget ledger, audit log or a stored block does not match what the gateway recorded (deleted, truncated, rolled back, swapped or damaged); the gateway refuses to serve."),
    "store.unavailable": (503, "The store cannot be read or written (read-only file system, permissions, an I/O error); retry after the operator fixes it."),
    "store.full": (503, "The disk holding the store is full; retry after the operator frees space."),
    # queries
    "query.invalid": (400, "The query request is malformed."),
    "query.unknown_template": (400, "No such query template."),
    "query.invalid_params": (400, "The template's parameters are invalid."),
    "query.sql_rejected": (400, "The restricted SQL is not an allowed aggregate."),
    "query.dataset_missing": (409, "A dataset the query needs has not been uploaded."),
    "query.timeout": (504, "The query exceeded its time limit."),
    "query.failed": (500, "The engine failed; details are in the server log, never in the response."),
    "query.not_found": (404, "No query with that id visible to the caller."),
    "gateway.busy": (503, "The gateway is at its limit of queries in flight; nothing was charged; retry after the Retry-After seconds."),
    "query.no_endpoint": (404, "No such endpoint or method on the gateway (the API is listed at /docs)."),
    # budget
    "budget.exhausted": (429, "The privacy budget for this period does not cover the request."),
    "budget.invalid_epsilon": (400, "Epsilon must be a finite positive number."),
    # auth
    "auth.missing": (401, "No bearer API key was sent."),
    "auth.invalid": (401, "The API key is unknown or revoked."),
    "auth.forbidden": (403, "The key's role may not use this endpoint."),
    "auth.rate_limited": (429, "Too many failed authentications from this client; retry after the Retry-After seconds."),
    # audit
    "audit.chain_broken": (409, "The audit log was edited, truncated or reordered."),
    # the monthly report
    "report.data_incomplete": (409, "A partner's data for the report month is missing, empty or older than the month's end."),
    # bugs
    "internal.invariant": (500, "A broken internal invariant: this is a bug, please report it."),
}


class CleanroomError(Exception):
    """Base of every error cleanroom raises on purpose.

    ``details`` holds the evidence (file, line, key path, column, row) as JSON-safe values so the
    CLI can print it and the gateway can put it in problem+json without reformatting.
    """

    area: str = ""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        if code not in CODES:
            raise InternalError("internal.invariant", f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigError(CleanroomError):
    area = "config"


class PolicyError(CleanroomError):
    area = "policy"


class PrepareError(CleanroomError):
    area = "prepare"


class UploadError(CleanroomError):
    area = "upload"


class StoreError(CleanroomError):
    area = "store"


class QueryError(CleanroomError):
    area = "query"


class BudgetError(CleanroomError):
    area = "budget"


class AuthError(CleanroomError):
    area = "auth"


class AuditError(CleanroomError):
    area = "audit"


class ReportError(CleanroomError):
    area = "report"


class InternalError(CleanroomError):
    """A broken invariant. Never caught to hide it: it means cleanroom has a bug."""

    area = "internal"

    def __init__(self, code: str, message: str, **details: Any) -> None:  # noqa: D107
        Exception.__init__(self, message)
        self.code = code if code in CODES else "internal.invariant"
        self.message = message
        self.details = details


def codes_markdown() -> str:
    """``docs/reference/errors.md``: one heading per code (a test keeps the file in sync)."""
    lines = [
        "# Error codes",
        "",
        "Every error cleanroom raises on purpose has a stable `code` (`area.reason`). The CLI prints it first",
        "(`error [code] message`, or `{\"error\": {\"code\": ...}}` with `--json`); the HTTP API returns it in",
        "an RFC 9457 `application/problem+json` body (`type`, `title`, `status`, `detail`, `code`).",
        "Codes are never renamed. Regenerate this page with",
        "`python -c 'from cleanroom.errors import codes_markdown; print(codes_markdown(), end=\"\")' > docs/reference/errors.md`.",
        "",
    ]
    for code, (status, meaning) in CODES.items():
        lines += [f"## `{code}`", "", f"HTTP {status}. {meaning}", ""]
    return "\n".join(lines)


__all__ = [
    "CODES",
    "AuditError",
    "AuthError",
    "BudgetError",
    "CleanroomError",
    "ConfigError",
    "InternalError",
    "PolicyError",
    "PrepareError",
    "QueryError",
    "ReportError",
    "StoreError",
    "UploadError",
    "codes_markdown",
]
