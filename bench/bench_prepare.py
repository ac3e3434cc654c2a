"""Benchmark ``prepare``: identifiers keyed per second on a generated raw file (default 1M rows).

Usage: python bench/bench_prepare.py --rows 1000000 [--persons 600000] [--workers 1,2] [--keep DIR]

The raw file imitates a dealer's leads export: messy emails (case, spaces, plus tags, a few
internationalized domains), German phones in several notations, 4% rows with only a phone and
1.5% without any usable identifier (--phone-only, --invalid), plus names and a CRM id that prepare must drop. Persons
repeat across rows when --persons < --rows (as customers do). Prints one JSON line.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cleanroom.crypto import new_secret, new_signing_key, public_key_text
from cleanroom.partners import load_partner
from cleanroom.prepare import prepare_partner

REPO = Path(__file__).resolve().parent.parent
FIRST = ["anna", "ben", "clara", "david", "emma", "felix", "greta", "hans", "ida", "jonas", "lena", "max", "mia", "noah", "jörg", "zoë"]
LAST = ["müller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann", "koch", "richter"]
DOMAINS = ["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.com", "yahoo.de", "posteo.de", "bücher.de", "xn--bcher-kva.de", "straße.de"]
BAD = ["", "n/a", "unknown", "jo doe@web.de", "x@localhost"]


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pa.Array:
    return pc.take(pa.array(pool), pa.array(rng.integers(0, len(pool), n)))


def _person_emails(rng: np.random.Generator, persons: int) -> pa.Array:
    first, last = _pick(rng, FIRST, persons), _pick(rng, LAST, persons)
    number = pc.cast(pa.array(np.arange(persons)), pa.string())
    sep = _pick(rng, [".", "_", "", ".", "+car."], persons)
    local = pc.binary_join_element_wise(first, sep, last, number, "")
    return pc.binary_join_element_wise(local, _pick(rng, DOMAINS, persons), "@")


def _person_phones(rng: np.random.Generator, persons: int) -> pa.Array:
    area = _pick(rng, ["30", "40", "89", "221", "151", "160", "176"], persons)
    sub = pc.cast(pa.array(rng.integers(2_000_000, 9_999_999, persons)), pa.string())
    prefix = _pick(rng, ["0", "+49 ", "0049 ", "(0"], persons)
    close = pc.if_else(pc.equal(prefix, "(0"), ") ", " ")
    return pc.binary_join_element_wise(prefix, area, close, sub, "")


def _mess(rng: np.random.Generator, emails: pa.Array) -> pa.Array:
    """Upper-case some, pad some: the forms a CRM export really holds."""
    n = len(emails)
    upper = pa.array(rng.random(n) < 0.2)
    emails = pc.if_else(upper, pc.utf8_upper(emails), emails)
    pad = pa.array(rng.random(n) < 0.1)
    return pc.if_else(pad, pc.binary_join_element_wise(" ", emails, "  ", ""), emails)


def generate(path: Path, rows: int, persons: int, phone_only: float = 0.04, invalid: float = 0.015, seed: int = 7) -> None:
    """Write a leads-shaped raw CSV with ``rows`` rows drawn from ``persons`` people."""
    rng = np.random.default_rng(seed)
    who = pa.array(rng.integers(0, persons, rows))
    email = _mess(rng, pc.take(_person_emails(rng, persons), who))
    phone = pc.take(_person_phones(rng, persons), who)
    kind = rng.random(rows)
    email = pc.if_else(pa.array(kind < phone_only), "", email)
    bad = pa.array(kind > 1 - invalid)
    email = pc.if_else(bad, _pick(rng, BAD, rows), email)
    phone = pc.if_else(bad, _pick(rng, ["", "12345", "n/a"], rows), phone)
    seconds = rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]") + np.datetime64("2025-11-01T00:00:00")
    table = pa.table({
        "crm_id": pc.cast(pa.array(np.arange(rows) + 10_000_000), pa.string()),
        "first_name": _pick(rng, FIRST, rows),
        "last_name": _pick(rng, LAST, rows),
        "email": email,
        "phone": phone,
        "lead_at": pc.strftime(pa.array(seconds), "%Y-%m-%dT%H:%M:%S"),
        "dealer_id": _pick(rng, [f"NS-0{i}" for i in range(1, 7)], rows),
        "model": _pick(rng, ["aster", "borealis", "cirrus", "dune", "ember", "fjord"], rows),
        "region": _pick(rng, ["north", "south", "east", "west", "central"], rows),
        "source": _pick(rng, ["web", "walk_in", "phone", "event"], rows),
    })
    pacsv.write_csv(table, path)


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped helper processes: robust when other jobs share the cores."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(rows: int, persons: int, workers_list: list[int], work: Path, phone_only: float, invalid: float) -> dict[str, object]:
    partner = load_partner(REPO / "partners" / "northside-dealers.toml")
    partner = partner.model_copy(update={"datasets": {"leads": partner.datasets["leads"]}})
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    generate(raw / "leads.csv", rows, persons, phone_only, invalid)
    result: dict[str, object] = {
        "bench": "prepare",
        "rows": rows,
        "persons": persons,
        "phone_only_share": phone_only,
        "invalid_share": invalid,
        "generate_seconds": round(time.perf_counter() - t0, 2),
    }
    salt, key = new_secret(), new_signing_key()
    # prepare refuses a key that is not the partner's registered uploader key: register this one
    partner = partner.model_copy(update={"keys": partner.keys.model_copy(update={"uploader": public_key_text(key)})})
    for workers in workers_list:
        cpu0 = _cpu_seconds()
        summary = prepare_partner(partner, salt, raw, work / f"out{workers}", key, workers=workers)
        cpu = _cpu_seconds() - cpu0
        used = summary.workers
        ds = summary.datasets["leads"]
        result[f"workers_{workers}"] = {
            "cores_used": used,
            "seconds": summary.seconds,
            "identifiers_per_second": round(summary.identifiers_per_second),
            "identifiers_per_second_per_core": round(summary.identifiers_per_second / used),
            "cpu_seconds": round(cpu, 2),
            "identifiers_per_cpu_second": round(rows / cpu),
            "rows_out": ds.rows_out,
            "keyed_by_phone": ds.identity.keyed_by_phone,
            "rows_without_identity": ds.identity.rows_without_identity,
        }
    result["cpu_count"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=None, help="distinct people (default: 60%% of rows)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to measure")
    parser.add_argument("--phone-only", type=float, default=0.04, help="share of rows with only a phone (default 0.04)")
    parser.add_argument("--invalid", type=float, default=0.015, help="share of rows with no usable identifier (default 0.015)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated and prepared files here")
    args = parser.parse_args(argv)
    persons = args.persons or max(1, int(args.rows * 0.6))
    workers = [int(w) for w in args.workers.split(",")]
    if args.keep:
        result = run(args.rows, persons, workers, args.keep, args.phone_only, args.invalid)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
            result = run(args.rows, persons, workers, Path(tmp), args.phone_only, args.invalid)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
