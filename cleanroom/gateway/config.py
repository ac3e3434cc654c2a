"""What a gateway process is started with: directories, where its secrets live, and its limits.

Frozen and validated once at start-up, so a misconfigured gateway refuses to start instead of
failing on the first request. Secrets are *not* held here, only where to find them
(``keys_file``; ``None`` means ``GatewaySecrets.load``'s environment fallback).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cleanroom.settings import Paths

MIB = 1024 * 1024


class Limits(BaseModel):
    """Request limits. Sizes are checked from ``Content-Length`` before a byte of body is read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_upload_bytes: int = Field(default=1024 * MIB, ge=1, description="Largest upload (Arrow file + manifest + multipart framing).")
    max_json_bytes: int = Field(default=1 * MIB, ge=1, description="Largest JSON request body (queries).")
    max_manifest_bytes: int = Field(default=64 * 1024, ge=1, description="Largest manifest part of an upload.")
    query_timeout_s: float = Field(default=30.0, gt=0, description="Engine watchdog for one query (time waiting for a slot does not count).")
    max_queries_in_flight: int = Field(default=2, ge=1, description="Uncached releases executing at once (about one per core).")
    release_time_quantum_s: float = Field(default=0.05, ge=0, description="An uncached release answers at a whole multiple of this many seconds after it started, so response times do not reveal small data-dependent differences (0: off).")
    max_queries_queued: int = Field(default=16, ge=0, description="Uncached releases waiting for a slot; more get 503 gateway.busy before any charge.")
    audit_page_max: int = Field(default=1000, ge=1, description="Most audit entries one GET /v1/audit returns.")


class GatewayConfig(BaseModel):
    """Everything ``create_app`` needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: Path
    partners: Path
    policies: Path
    keys_file: Path | None = None
    limits: Limits = Limits()

    @classmethod
    def from_paths(cls, paths: Paths, keys_file: Path | None = None, limits: Limits | None = None) -> GatewayConfig:
        return cls(store=paths.store, partners=paths.partners, policies=paths.policies, keys_file=keys_file, limits=limits or Limits())


__all__ = ["GatewayConfig", "Limits"]
