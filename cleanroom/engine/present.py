"""Post-processing of a NOISY result into the rows an analyst sees (no data, no budget).

Everything here reads only a :class:`~cleanroom.aggregate.NoisyResult`: conversion and match
rates from two noisy counts, medians from the noisy days histogram, credits in units, and each
value's 95% interval from its part's ``ci95``. Post-processing of differentially private output
costs no privacy. A suppressed value is ``None`` and its row says ``suppressed: true``; it is
never shown as 0. Intervals are ``[low, high]``; a ratio's interval combines the two 95%
intervals of its operands (both hold together with probability >= 90%), and is ``None`` on the
high side when the denominator's interval reaches 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from cleanroom.aggregate import NoisyPart, NoisyResult
from cleanroom.engine.templates.funnel import BUCKET_LABELS, DAY_BUCKETS, STAGE_NAMES, pair_label
from cleanroom.errors import InternalError

DIGITS = 4


class Presented(BaseModel):
    """A table for people: column names, one dict per row, and notes on how to read it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str]


@dataclass(frozen=True)
class Est:
    """One released value in display units with its 95% interval; all None when suppressed."""

    value: float | None
    low: float | None
    high: float | None

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def interval(self) -> list[float | None] | None:
        return None if self.value is None else [_round(self.low), _round(self.high)]


def estimate(part: NoisyPart, index: int) -> Est:
    raw = part.values[index]
    if raw is None:
        return Est(None, None, None)
    value, ci = raw / part.unit, part.ci95 / part.unit
    return Est(value, value - ci, value + ci)


def ratio(num: Est, den: Est) -> Est:
    """``num / den`` with a conservative interval; None when either is suppressed or den <= 0."""
    if num.value is None or den.value is None or den.value <= 0:
        return Est(None, None, None)
    n_low, n_high = num.low or 0.0, num.high or 0.0
    d_low, d_high = den.low or 0.0, den.high or 0.0
    return Est(num.value / den.value, max(n_low, 0.0) / d_high, n_high / d_low if d_low > 0 else None)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)


def _put(row: dict[str, Any], name: str, est: Est, integer: bool = False) -> None:
    value = None if est.value is None else (round(est.value) if integer else _round(est.value))
    row[name] = value
    row[f"{name}_ci95"] = est.interval()


def present(noisy: NoisyResult) -> Presented:
    """The analyst's table for one noisy result (dispatch on its template)."""
    try:
        presenter = PRESENTERS[noisy.template]
    except KeyError:
        raise InternalError("internal.invariant", f"no presenter for template {noisy.template!r}") from None
    return presenter(noisy)


# --- funnel --------------------------------------------------------------------------------


def median_from_histogram(part: NoisyPart, pair_index: int) -> Est:
    """Median days of one stage pair from its noisy buckets, with a conservative interval.

    The point is the bucket where the cumulative count passes half the total (interpolated
    inside multi-day buckets). The interval spans every median consistent with each bucket
    lying inside its own 95% interval.
    """
    n = len(BUCKET_LABELS)
    raw = part.values[pair_index * n : (pair_index + 1) * n]
    if any(v is None for v in raw):
        return Est(None, None, None)
    counts = [max(0.0, float(v or 0)) for v in raw]
    total = sum(counts)
    if total <= 0:
        return Est(None, None, None)
    lows = [max(0.0, c - part.ci95) for c in counts]
    highs = [c + part.ci95 for c in counts]
    lo_j = next(j for j in range(n) if sum(highs[: j + 1]) >= sum(lows[j + 1 :]))
    hi_j = max(j for j in range(n) if sum(lows[:j]) <= sum(highs[j:]))
    return Est(_median_point(counts, total), float(DAY_BUCKETS[lo_j][0]), float(DAY_BUCKETS[hi_j][1]))


def _median_point(counts: list[float], total: float) -> float:
    cum = 0.0
    for (lo, hi), c in zip(DAY_BUCKETS, counts, strict=True):
        if c > 0 and cum + c >= total / 2:
            return lo + (hi - lo) * (total / 2 - cum) / c
        cum += c
    return float(DAY_BUCKETS[-1][1])


def _funnel(noisy: NoisyResult) -> Presented:
    persons = noisy.part("persons")
    dims = list(noisy.dimensions)
    index = {cell: i for i, cell in enumerate(persons.cells)}
    medians = _funnel_medians(noisy)
    rows = []
    for i, cell in enumerate(persons.cells):
        stage, rest = cell[0], cell[1:]
        row: dict[str, Any] = {"stage": stage, **dict(zip(dims, rest, strict=True))}
        est = estimate(persons, i)
        _put(row, "persons", est, integer=True)
        prev = STAGE_NAMES[STAGE_NAMES.index(stage) - 1] if STAGE_NAMES.index(stage) else None
        prev_i = index.get((prev, *rest)) if prev else None
        _put(row, "conversion", ratio(est, estimate(persons, prev_i)) if prev_i is not None else Est(None, None, None))
        _put(row, "median_days", medians.get(pair_label(prev, stage), Est(None, None, None)) if prev else Est(None, None, None))
        row["suppressed"] = est.suppressed
        rows.append(row)
    columns = ["stage", *dims, "persons", "persons_ci95", "conversion", "conversion_ci95", "median_days", "median_days_ci95", "suppressed"]
    notes = [
        "persons: distinct persons at the stage (noisy); conversion: persons / persons at the previous stage in the same cell.",
        "median_days: days from the previous stage to this one over all persons with both stages (not per cell), from a noisy histogram.",
        "Intervals are 95% per value; a ratio's interval combines both operands' (joint coverage >= 90%). Suppressed values are null, never 0.",
    ]
    omitted = noisy.meta.get("stages_omitted") or []
    if omitted:
        notes.append(f"Stages omitted (no data in scope for the requested dimensions or filters): {', '.join(omitted)}.")
    for label, why in (noisy.meta.get("stage_pairs_omitted") or {}).items():
        notes.append(f"No median days for {label}: {why}.")
    return Presented(columns=columns, rows=rows, notes=notes)


def _funnel_medians(noisy: NoisyResult) -> dict[str, Est]:
    if not any(p.name == "days" for p in noisy.parts):
        return {}
    days = noisy.part("days")
    pairs = list(dict.fromkeys(cell[0] for cell in days.cells))
    return {label: median_from_histogram(days, i) for i, label in enumerate(pairs)}


# --- attribution ---------------------------------------------------------------------------


def _attribution(noisy: NoisyResult) -> Presented:
    by = noisy.dimensions[0] if noisy.dimensions else "key"
    credit = noisy.part("credit")
    financed = next((p for p in noisy.parts if p.name == "credit_financed"), None)
    rows = []
    for i, cell in enumerate(credit.cells):
        row: dict[str, Any] = {by: cell[0]}
        main = estimate(credit, i)
        _put(row, "credited_sales", main)
        fin = estimate(financed, i) if financed else Est(None, None, None)
        _put(row, "credited_financed_sales", fin)
        row["suppressed"] = main.suppressed or (financed is not None and fin.suppressed)
        rows.append(row)
    rows.append(_attribution_total(noisy, by))
    columns = [by, "credited_sales", "credited_sales_ci95", "credited_financed_sales", "credited_financed_sales_ci95", "suppressed"]
    notes = [
        "credited_sales: sales credited to each value (fractional credit in sales units, noisy); 'unattributed' holds sales without a touch.",
        "The 'total' row holds the noisy count of sales and of financed sales.",
        "Intervals are 95% per value. Suppressed values are null, never 0.",
    ]
    return Presented(columns=columns, rows=rows, notes=notes)


def _attribution_total(noisy: NoisyResult, by: str) -> dict[str, Any]:
    sales = noisy.part("sales")
    where = {cell[0]: i for i, cell in enumerate(sales.cells)}
    row: dict[str, Any] = {by: "total"}
    total = estimate(sales, where["sales"])
    fin = estimate(sales, where["financed_sales"]) if "financed_sales" in where else Est(None, None, None)
    _put(row, "credited_sales", total, integer=True)
    _put(row, "credited_financed_sales", fin, integer=True)
    row["suppressed"] = total.suppressed or ("financed_sales" in where and fin.suppressed)
    return row


# --- overlap, lifecycle, sql ---------------------------------------------------------------


def _overlap(noisy: NoisyResult) -> Presented:
    persons, shared = noisy.part("persons"), noisy.part("shared")
    where = {cell[0]: i for i, cell in enumerate(persons.cells)}
    rows = []
    for i, (a, b) in enumerate(shared.cells):
        pa, pb, both = estimate(persons, where[a]), estimate(persons, where[b]), estimate(shared, i)
        row: dict[str, Any] = {"dataset_a": a, "dataset_b": b}
        for name, est in (("persons_a", pa), ("persons_b", pb), ("shared", both)):
            _put(row, name, est, integer=True)
        _put(row, "match_rate_a", ratio(both, pa))
        _put(row, "match_rate_b", ratio(both, pb))
        row["suppressed"] = pa.suppressed or pb.suppressed or both.suppressed
        rows.append(row)
    values_ = ("persons_a", "persons_b", "shared", "match_rate_a", "match_rate_b")
    columns = ["dataset_a", "dataset_b"] + [f"{n}{s}" for n in values_ for s in ("", "_ci95")]
    notes = [
        "match_rate_a = shared / persons_a (consented persons only); intervals combine both operands' 95% intervals.",
        "Suppressed values are null, never 0.",
    ]
    return Presented(columns=columns + ["suppressed"], rows=rows, notes=notes)


def _lifecycle(noisy: NoisyResult) -> Presented:
    by = noisy.dimensions[0]
    ending = noisy.part("ending")
    seen = next((p for p in noisy.parts if p.name == "seen_again"), None)
    rows = []
    for i, cell in enumerate(ending.cells):
        row: dict[str, Any] = {by: cell[0]}
        end = estimate(ending, i)
        again = estimate(seen, i) if seen else Est(None, None, None)
        _put(row, "contracts_ending", end, integer=True)
        _put(row, "seen_again", again, integer=True)
        _put(row, "seen_again_rate", ratio(again, end))
        row["suppressed"] = end.suppressed or (seen is not None and again.suppressed)
        rows.append(row)
    columns = [by] + [f"{n}{s}" for n in ("contracts_ending", "seen_again", "seen_again_rate") for s in ("", "_ci95")] + ["suppressed"]
    notes = [
        "contracts_ending: persons with a contract ending in the window; "
        "seen_again: of those, seen at the brand or a dealer since 180 days before the end.",
        "Suppressed values are null, never 0.",
    ]
    return Presented(columns=columns, rows=rows, notes=notes)


def _sql(noisy: NoisyResult) -> Presented:
    dims = list(noisy.dimensions)
    first = noisy.parts[0]
    rows = []
    for i, cell in enumerate(first.cells):
        row: dict[str, Any] = dict(zip(dims, cell, strict=True))
        ests = [(p.name, estimate(p, i)) for p in noisy.parts]
        for name, est in ests:
            _put(row, name, est, integer=True)
        row["suppressed"] = any(e.suppressed for _, e in ests)
        rows.append(row)
    columns = dims + [f"{p.name}{s}" for p in noisy.parts for s in ("", "_ci95")] + ["suppressed"]
    return Presented(columns=columns, rows=rows, notes=["Every value is noisy with its 95% interval; suppressed values are null, never 0."])


PRESENTERS: dict[str, Callable[[NoisyResult], Presented]] = {
    "funnel": _funnel,
    "attribution": _attribution,
    "overlap": _overlap,
    "lifecycle": _lifecycle,
    "sql": _sql,
}

__all__ = ["Est", "Presented", "estimate", "median_from_histogram", "present", "ratio"]
