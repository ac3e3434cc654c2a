"""Build a whole synthetic collaboration for the benchmarks, with the library APIs the demo uses.

synth (raw partner CSVs with PII) -> keys -> prepare (each partner, on "its own machine") ->
ingest (signature, checks, pepper, encrypted store) -> sign by all four compliance officers ->
activate. Every step is the real product code; this module only sequences it and times it.
It prints nothing: ``run.py`` owns the screen.
"""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanroom import crypto
from cleanroom.audit import AuditLog
from cleanroom.ingest import find_uploads, ingest_upload
from cleanroom.keys import create_gateway_keys, create_salt, create_signing_key
from cleanroom.partners import load_partners
from cleanroom.policy import activate, sign_policy
from cleanroom.prepare import prepare_partner
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store
from cleanroom.synth import generate

COLLABORATION = "aurora-2026"
Tick = Callable[[str], None]


@dataclass
class Collab:
    """Where one built collaboration lives, and what building it measured."""

    work: Path
    customers: int
    seed: int
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def partners_dir(self) -> Path:
        return self.work / "partners"

    @property
    def policies_dir(self) -> Path:
        return self.work / "policies"

    @property
    def store_dir(self) -> Path:
        return self.work / "store"

    @property
    def keys_file(self) -> Path:
        return self.work / "keys" / "gateway.keys"

    def secrets(self) -> GatewaySecrets:
        return GatewaySecrets.load(self.keys_file)


def cpu_seconds() -> float:
    """CPU time of this process and its reaped helpers: prepare's workers are processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def fresh_workdir(work: Path, repo: Path) -> None:
    """Recreate ``work`` with copies of the repository's partners/ and policies/ (never edited in place)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for source in ("partners", "policies"):
        shutil.copytree(repo / source, work / source, ignore=shutil.ignore_patterns("*.sig"))


def build(work: Path, repo: Path, customers: int, seed: int, workers: int, tick: Tick,
          policy_edit: Callable[[Path], None] | None = None) -> Collab:
    """Every step from raw data to an active policy, each timed; ``policy_edit(path)`` may change the policy copy before signing."""
    fresh_workdir(work, repo)
    if policy_edit:
        policy_edit(work / "policies" / f"{COLLABORATION}.yaml")
    collab = Collab(work=work, customers=customers, seed=seed)
    tick(f"synth {customers:,} customers")
    collab.timings["synth"] = run_synth(collab)
    make_keys(collab)
    tick("prepare (partner side: normalize, HMAC, drop PII, sign)")
    collab.timings["prepare"] = prepare_all(collab, workers)
    tick("ingest (checks, pepper, encrypted store)")
    collab.timings["ingest"] = ingest_all(collab)
    tick("sign and activate the policy")
    collab.timings["policy"] = sign_and_activate(collab)
    return collab


def run_synth(collab: Collab) -> dict[str, Any]:
    summary = generate(collab.customers, collab.seed, collab.work / "raw", partners_dir=collab.partners_dir)
    raw_bytes = sum(p.stat().st_size for p in (collab.work / "raw").rglob("*.csv"))
    return {"seconds": summary.seconds, "rows": summary.rows, "persons": summary.persons, "files": len(summary.files),
            "raw_mb": round(raw_bytes / 1e6, 1), "rows_per_s": round(summary.rows / summary.seconds)}


def make_keys(collab: Collab) -> None:
    """Salt (partners only), gateway pepper + database key (operator only), Ed25519 keys per partner and role."""
    keys = collab.work / "keys"
    create_salt(keys / "salt.hex")
    create_gateway_keys(collab.keys_file)
    for pid in sorted(load_partners(collab.partners_dir)):
        for role in ("uploader", "compliance"):
            create_signing_key(collab.partners_dir, pid, role, keys / f"{pid}-{role}.pem")


def prepare_all(collab: Collab, workers: int) -> dict[str, Any]:
    """Each partner prepares its raw files; identifiers/s over all partners, per core and per CPU-second."""
    salt = crypto.read_secret(collab.work / "keys" / "salt.hex")
    rows_in, seconds, cpu, used, per_partner = 0, 0.0, 0.0, 1, {}
    for pid, partner in sorted(load_partners(collab.partners_dir).items()):
        key = crypto.read_signing_key(collab.work / "keys" / f"{pid}-uploader.pem")
        cpu0 = cpu_seconds()
        s = prepare_partner(partner, salt, collab.work / "raw", collab.work / "prepared" / pid, key, workers=workers)
        cpu += cpu_seconds() - cpu0
        rows_in, seconds, used = rows_in + s.rows_in, seconds + s.seconds, max(used, s.workers)
        per_partner[pid] = {"rows": s.rows_in, "seconds": s.seconds, "identifiers_per_s": round(s.identifiers_per_second)}
    return {
        "identifiers": rows_in, "seconds": round(seconds, 2), "workers": used,
        "identifiers_per_s": round(rows_in / seconds), "identifiers_per_s_per_core": round(rows_in / seconds / used),
        "cpu_seconds": round(cpu, 2), "identifiers_per_cpu_s": round(rows_in / cpu), "partners": per_partner,
    }


def ingest_all(collab: Collab) -> dict[str, Any]:
    """Every partner's signed files through ``ingest_upload`` into one encrypted store."""
    audit = AuditLog(collab.store_dir / "audit.jsonl")
    rows, seconds, datasets = 0, 0.0, {}
    started = time.perf_counter()
    with Store.open(collab.store_dir, collab.secrets()) as store:
        for pid in sorted(p.name for p in (collab.work / "prepared").iterdir()):
            for pair in find_uploads(collab.work / "prepared" / pid):
                r = ingest_upload(store, collab.partners_dir, pid, pair.arrow, pair.manifest, actor=pid, audit=audit)
                rows, seconds = rows + r.rows, seconds + r.seconds
                datasets[f"{pid}.{r.dataset}"] = {"rows": r.rows, "seconds": r.seconds, "new_persons": r.new_persons}
        persons = store.person_count()
    wall = time.perf_counter() - started
    store_bytes = sum(p.stat().st_size for p in collab.store_dir.rglob("*") if p.is_file())
    return {"rows": rows, "seconds": round(seconds, 2), "wall_seconds": round(wall, 2), "rows_per_s": round(rows / seconds),
            "persons": persons, "store_mb": round(store_bytes / 1e6, 1), "datasets": datasets}


def sign_and_activate(collab: Collab) -> dict[str, Any]:
    started = time.perf_counter()
    partners = load_partners(collab.partners_dir)
    path = collab.policies_dir / f"{COLLABORATION}.yaml"
    for pid in sorted(partners):
        key = crypto.read_signing_key(collab.work / "keys" / f"{pid}-compliance.pem")
        sign_policy(path, key, pid, partners, store_dir=collab.store_dir, actor=pid)
    act = activate(path, collab.store_dir, partners, actor="bench-operator")
    return {"seconds": round(time.perf_counter() - started, 3), "content_hash": act.content_hash}


__all__ = ["COLLABORATION", "Collab", "build", "cpu_seconds", "fresh_workdir"]
