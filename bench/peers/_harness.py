"""What every peer script shares: arguments, timing, and the one JSON line it prints.

A peer script runs inside its own virtual environment (``bench/.venvs/<peer>``), loads the
exported consented rows (untimed, like the baseline's in-memory tables, unless reading the files
is part of what the peer measures), then times ``reps`` runs of the question after one warm-up.
It prints ``{"times_s": [...], "noisy": {...}, "exact": {...}, ...}`` as its last line; ``exact``
is the per-person table's cell counts without noise, computed outside the timed runs, so the
record can check that the peer answered the same question as the cleanroom engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cohort  # noqa: E402  (beside this file)


def args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="folder of <table>.parquet (the 'measurement' export)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="", help="a peer's variant (e.g. enforced / scan, duckdb / pandas)")
    return parser.parse_args()


def cells(rows: Any) -> dict[str, int]:
    """``(model, stage, n)`` rows -> ``{"stage|model": n}``."""
    return {f"{stage}|{model}": int(round(float(n))) for model, stage, n in rows}


def run(query: Callable[[], dict[str, int]], exact: Callable[[], dict[str, int]], reps: int, **info: Any) -> None:
    """Warm up, time ``reps`` runs, print the JSON line; any exception becomes ``{"error": ...}``."""
    try:
        noisy = query()
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            noisy = query()
            times.append(time.perf_counter() - started)
        out = {"times_s": times, "noisy": noisy, "exact": exact(), **info}
    except Exception as exc:  # the bench reports it as n/a, it must never crash the bench
        out = {"error": f"{type(exc).__name__}: {str(exc)[:400]}", "traceback": traceback.format_exc()[-2000:], **info}
    print(json.dumps(out, default=str))


def tables() -> tuple[str, ...]:
    return cohort.FUNNEL_TABLES


def version(pkg: str) -> str:
    from importlib.metadata import version as v

    return v(pkg)
