"""Ingest throughput: one generated prepared file of ``northside-dealers.leads`` through the real
``ingest_upload`` (signature, digest, Arrow read, schema, hid and PII checks, pepper, swap) into a
real encrypted store. Prints one JSON line.

    python bench/bench_ingest.py --rows 1000000

Two uploads are timed: the first assigns a person id to every person (all new); the second is a
new version over the same persons (the usual monthly refresh), which exercises the swap and the
drop of the superseded table.
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.crypto import new_secret, new_signing_key, public_key_text
from cleanroom.ingest import ingest_upload
from cleanroom.manifest import Manifest, manifest_path
from cleanroom.partners import Dataset, get_partner, set_public_key
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store

REPO = Path(__file__).resolve().parent.parent
PARTNER, DATASET = "northside-dealers", "leads"
DOMAINS = {
    "dealer_id": [f"NS-0{i}" for i in range(1, 7)],
    "model": ["aster", "borealis", "cirrus", "dune", "ember", "fjord"],
    "region": ["north", "south", "east", "west", "central"],
    "source": ["web", "walk_in", "phone", "event"],
}


def random_hids(n: int) -> pa.Array:
    """``n`` random 64-hex strings built as one Arrow buffer (no Python string per row)."""
    data = binascii.hexlify(os.urandom(32 * n))
    offsets = np.arange(0, 64 * (n + 1), 64, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def leads(dataset: Dataset, rows: int, hids: pa.Array, rng: np.random.Generator) -> pa.Table:
    start = np.datetime64("2025-11-01T00:00:00", "us")
    minutes = rng.integers(0, 365 * 24 * 60, rows).astype("timedelta64[m]")
    columns = {
        "hid": pc.take(hids, pa.array(rng.integers(0, len(hids), rows))),
        "lead_at": pa.array(start + minutes, pa.timestamp("us")),
        **{name: pc.take(pa.array(values), pa.array(rng.integers(0, len(values), rows))) for name, values in DOMAINS.items()},
    }
    schema = dataset.arrow_schema()
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def write_prepared(out: Path, name: str, dataset: Dataset, table: pa.Table, key: object) -> tuple[Path, Path]:
    arrow = out / f"{name}.arrow"
    with pa.ipc.new_file(arrow, table.schema) as writer:
        writer.write_table(table, max_chunksize=128_000)
    manifest = Manifest.new(PARTNER, DATASET, arrow, dataset.schema_hash(), table.num_rows).signed_by(key)  # type: ignore[arg-type]
    manifest.write(manifest_path(arrow))
    return arrow, manifest_path(arrow)


def run(rows: int, persons: int, threads: int, memory_limit: str, work: Path) -> dict[str, object]:
    partners = work / "partners"
    shutil.copytree(REPO / "partners", partners)
    key = new_signing_key()
    set_public_key(partners, PARTNER, "uploader", public_key_text(key))
    dataset = get_partner(partners, PARTNER).dataset(DATASET)
    rng = np.random.default_rng(2026)
    hids = random_hids(persons)
    first = write_prepared(work, "leads1", dataset, leads(dataset, rows, hids, rng), key)
    second = write_prepared(work, "leads2", dataset, leads(dataset, rows, hids, rng), key)
    secrets = GatewaySecrets(pepper=new_secret(), db_key=new_secret())
    with Store.open(work / "store", secrets, memory_limit=memory_limit, threads=threads) as store:
        r1 = ingest_upload(store, partners, PARTNER, *first, actor="bench")
        r2 = ingest_upload(store, partners, PARTNER, *second, actor="bench")
    return {
        "bench": "ingest",
        "dataset": f"{PARTNER}.{DATASET}",
        "rows": rows,
        "persons": persons,
        "file_mb": round(first[0].stat().st_size / 1e6, 1),
        "first_upload_s": r1.seconds,
        "first_new_persons": r1.new_persons,
        "first_rows_per_s": round(rows / r1.seconds),
        "refresh_upload_s": r2.seconds,
        "refresh_new_persons": r2.new_persons,
        "refresh_rows_per_s": round(rows / r2.seconds),
        "store_mb": round(sum(p.stat().st_size for p in (work / "store").rglob("*") if p.is_file()) / 1e6, 1),
        "threads": threads,
        "memory_limit": memory_limit,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=None, help="distinct persons (default: 60%% of rows)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GB")
    args = parser.parse_args()
    persons = args.persons or max(1, int(args.rows * 0.6))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cleanroom-bench-") as tmp:
        result = run(args.rows, persons, args.threads, args.memory_limit, Path(tmp))
    result["wall_s"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
