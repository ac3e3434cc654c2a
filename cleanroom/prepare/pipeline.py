"""``prepare``: raw partner CSV in, keyed and PII-free Arrow files with signed manifests out.

Runs on the partner's machine, so it imports nothing of the server (store, ingest, engine,
gateway, dp, budget). Per dataset: read the declared columns plus email and phone as text, cast
them to the declared types, compute ``hid`` (identity.py), drop rows without one, keep exactly the
declared columns in declared order, and write the file and its manifest atomically (writer.py).
What leaves the machine is therefore exactly what the partner file declares, nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict

from cleanroom.partners import JOIN_KEY, Dataset, Partner
from cleanroom.prepare.identity import IdentityCounts, resolve_identity
from cleanroom.prepare.keying import WorkerPool, check_salt, salt_fingerprint
from cleanroom.prepare.normalize import DEFAULT_REGION, check_region
from cleanroom.prepare.rawio import EMAIL_COLUMN, PHONE_COLUMN, business_columns, cast_column, check_raw, raw_file, read_raw
from cleanroom.prepare.uploader import check_signing_key
from cleanroom.prepare.writer import Signing, Staged, commit, discard, stage_prepared, write_json

SUMMARY_FILE = "summary.json"
STEPS_PER_DATASET = 3
# Raw files above this size (about 450,000 rows) start the helpers up front, overlapping their start-up with reading.
PARALLEL_MIN_BYTES = 48 << 20

Progress = Callable[[str, int, int], None]
"""``progress(description, steps_done, steps_total)``: called as each step of each dataset finishes."""


class DatasetSummary(BaseModel):
    """What happened to one dataset; counts only, never a value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    file: str
    manifest: str
    rows_in: int
    rows_out: int
    identity: IdentityCounts
    sha256: str
    seconds: float


class PrepareSummary(BaseModel):
    """The result of preparing every dataset of one partner (also written as ``summary.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    region: str
    workers: int
    salt_fingerprint: str
    allow_shrink: bool = False
    datasets: dict[str, DatasetSummary]
    rows_in: int
    rows_out: int
    seconds: float
    identifiers_per_second: float


@dataclass(frozen=True)
class _Run:
    """The fixed inputs of one prepare run, so the per-dataset steps take few arguments."""

    partner: Partner
    salt: bytes
    out_dir: Path
    signing: Signing
    region: str
    pool: WorkerPool


def _typed_columns(path: Path, dataset: Dataset, raw: pa.Table) -> dict[str, pa.Array]:
    return {name: cast_column(path, name, dataset.columns[name], raw.column(name)) for name in business_columns(dataset)}


def _assemble(dataset: Dataset, hid: pa.Array, typed: dict[str, pa.Array]) -> pa.Table:
    """Exactly the declared schema, declared order; rows without a hid dropped."""
    keep = pc.is_valid(hid)
    schema = dataset.arrow_schema()
    arrays = [pc.filter(hid if name == JOIN_KEY else typed[name], keep) for name in schema.names]
    return pa.Table.from_arrays(arrays, schema=schema)


def prepare_dataset(run: _Run, name: str, path: Path, tick: Callable[[str], None]) -> tuple[DatasetSummary, Staged]:
    """Prepare one dataset up to its staged (not yet visible) output; see the module docstring."""
    start = time.perf_counter()
    dataset = run.partner.datasets[name]
    raw = read_raw(path, dataset)
    typed = _typed_columns(path, dataset, raw)
    tick(f"{name}: read {raw.num_rows:,} rows")
    identity = resolve_identity(run.pool, run.salt, raw.column(EMAIL_COLUMN), raw.column(PHONE_COLUMN), run.region)
    del raw  # the PII columns go out of scope here; nothing below can reach them
    table = _assemble(dataset, identity.hid, typed)
    tick(f"{name}: keyed {table.num_rows:,} rows")
    staged = stage_prepared(table, run.out_dir, run.partner.id, name, dataset.schema_hash(), run.signing)
    tick(f"{name}: signed {staged.arrow.name}")
    summary = DatasetSummary(
        dataset=name,
        file=staged.arrow.name,
        manifest=staged.manifest_file.name,
        rows_in=len(identity.hid),
        rows_out=table.num_rows,
        identity=identity.counts,
        sha256=staged.manifest.sha256,
        seconds=round(time.perf_counter() - start, 4),
    )
    return summary, staged


def _prepare_all(run: _Run, paths: dict[str, Path], tick: Callable[[str], None]) -> dict[str, DatasetSummary]:
    """Stage every dataset, then commit them all; any failure discards what was staged."""
    staged: list[Staged] = []
    results: dict[str, DatasetSummary] = {}
    try:
        for name, path in paths.items():
            results[name], one = prepare_dataset(run, name, path, tick)
            staged.append(one)
    except BaseException:
        for one in staged:
            discard(one)
        raise
    commit(staged)
    return results


def locate_inputs(partner: Partner, raw_dir: Path) -> dict[str, Path]:
    """Every dataset's raw file, each checked for its columns, before a single output is written."""
    paths = {name: raw_file(raw_dir, partner, name) for name in partner.datasets}
    for name, path in paths.items():
        check_raw(path, partner.datasets[name])
    return paths


class _Ticker:
    """Counts finished steps and forwards them to the caller's progress callback."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, description: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(description, self.done, self.total)


def prepare_partner(
    partner: Partner,
    salt: bytes,
    raw_dir: Path,
    out_dir: Path,
    signing_key: Ed25519PrivateKey,
    *,
    region: str = DEFAULT_REGION,
    workers: int = 2,
    progress: Progress | None = None,
    allow_shrink: bool = False,
) -> PrepareSummary:
    """Prepare every dataset the partner declares; write ``summary.json`` last and return it.

    All inputs are checked (salt, region, the signing key against the partner's registered
    uploader key, every raw file and its columns) before anything is written, and outputs become
    visible only after every dataset succeeded (writer.py): a bad value anywhere leaves the
    previous outputs as they were. A stale ``summary.json`` is removed first so it can never
    describe other files.

    Every manifest carries the salt's public fingerprint (the gateway refuses a file keyed with
    another salt than the collaboration's) and, with ``allow_shrink``, the partner's signed word
    that a much smaller version than the one the gateway holds is intended.
    """
    start = time.perf_counter()
    check_salt(salt)
    check_region(region)
    check_signing_key(partner, signing_key)
    paths = locate_inputs(partner, raw_dir)
    (out_dir / SUMMARY_FILE).unlink(missing_ok=True)
    tick = _Ticker(STEPS_PER_DATASET * len(paths), progress)
    with WorkerPool(workers) as pool:
        if max((p.stat().st_size for p in paths.values()), default=0) >= PARALLEL_MIN_BYTES:
            pool.start()  # overlap the helpers' start-up with reading the first file
        run = _Run(partner, salt, out_dir, Signing(signing_key, salt_fingerprint(salt), allow_shrink), region, pool)
        results = _prepare_all(run, paths, tick)
    return _summarize(run, pool.workers, results, time.perf_counter() - start)


def _summarize(run: _Run, workers: int, results: dict[str, DatasetSummary], seconds: float) -> PrepareSummary:
    rows_in = sum(r.rows_in for r in results.values())
    summary = PrepareSummary(
        partner=run.partner.id,
        region=run.region,
        workers=workers,
        salt_fingerprint=run.signing.salt_fingerprint,
        allow_shrink=run.signing.allow_shrink,
        datasets=results,
        rows_in=rows_in,
        rows_out=sum(r.rows_out for r in results.values()),
        seconds=round(seconds, 4),
        identifiers_per_second=round(rows_in / seconds, 1) if seconds > 0 else 0.0,
    )
    write_json(summary.model_dump(mode="json"), run.out_dir / SUMMARY_FILE)
    return summary


__all__ = ["SUMMARY_FILE", "DatasetSummary", "PrepareSummary", "Progress", "locate_inputs", "prepare_dataset", "prepare_partner"]
