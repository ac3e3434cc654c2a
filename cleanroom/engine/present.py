"""Post-processing of a NOISY result into the rows an analyst sees (no data, no budget).

Everything here reads only a :class:`~cleanroom.aggregate.NoisyResult`. Templates release
partitions (each person in one cell, ``derived`` parts); what is shown are sums of their cells
(stage counts, credited sales, persons per dataset) and shares of two such sums (conversions,
the financed share, match and seen-again rates). Each shown count is suppressed on its *own*
noisy value (below the threshold it is ``None`` and the row says so, never 0), and carries
the 95 % interval dp/accuracy.py computes for it: conditional on having been shown, from the
exact distribution of the sum of its cells' noise. A share is shown only when both of its
counts are, with a Fieller interval clipped to [0, 1]. Post-processing of differentially private
output costs no privacy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from cleanroom.aggregate import NoisyPart, NoisyResult
from cleanroom.dp.accuracy import count_interval, noise_variance, share_interval
from cleanroom.errors import InternalError

DIGITS = 6  # enough that rounding a narrow share interval outward does not widen it much (1M-person cells)
INTERVAL_NOTE = (
    "Each number is noisy; its 95% interval [low, high] holds the true value in 95% of releases (for a count, among the "
    "releases where it is shown). Rates are shares of two counts, in [0, 1]. Suppressed values (fewer than the threshold) "
    "are null, never 0."
)


class Presented(BaseModel):
    """A table for people: column names, one dict per row, and notes on how to read it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str]


@dataclass(frozen=True)
class Est:
    """One shown value in display units with its 95 % interval; all None when suppressed.

    ``var`` is the noise variance of the value (display units squared): shares combine it.
    """

    value: float | None
    low: float | None
    high: float | None
    var: float = 0.0
    why: str | None = None  # for a None value: "suppressed" (too few persons) or "n/a" (not computed)

    @property
    def suppressed(self) -> bool:
        return self.value is None and self.why != "n/a"

    def interval(self) -> list[float | None] | None:
        """``[low, high]`` rounded OUTWARD to the shown digits: rounding must never narrow an interval."""
        if self.value is None:
            return None
        scale = 10**DIGITS
        low = None if self.low is None else math.floor(self.low * scale + 1e-9) / scale
        high = None if self.high is None else math.ceil(self.high * scale - 1e-9) / scale
        return [low, high]


SUPPRESSED = Est(None, None, None, why="suppressed")
NA = Est(None, None, None, why="n/a")


def total(part: NoisyPart, indices: Sequence[int], threshold: int) -> Est:
    """The sum of some cells of a part, suppressed below ``threshold`` persons, with its interval.

    For a ``derived`` part the sum is suppressed here on its own noisy value; for any other part
    release already suppressed each cell (so only single cells are summed). A count decided on
    its own value gets the interval conditional on being shown; one decided by another part's
    independent noise (a guarded sum), the plain interval.
    """
    raw = [part.values[i] for i in indices]
    if not indices:
        return NA
    if any(v is None for v in raw):
        return SUPPRESSED
    value = sum(int(v) for v in raw if v is not None)
    self_guarded = part.guard is None
    if self_guarded and value < threshold * part.unit:
        return SUPPRESSED
    low, high = count_interval(value, mechanism=_mechanism(part), scale=part.scale, terms=len(indices),
                               threshold=threshold * part.unit if self_guarded and threshold > 0 else None)
    var = len(indices) * noise_variance(_mechanism(part), part.scale)
    return Est(value / part.unit, low / part.unit, high / part.unit, var / part.unit**2)


def share(part: Est, rest: Est) -> Est:
    """``part / (part + rest)`` of two independent shown counts (None when either is suppressed)."""
    if part.value is None or rest.value is None:
        return part if part.value is None else rest
    iv = share_interval(part.value, rest.value, var_x=part.var, var_y=rest.var)
    if iv.estimate is None:
        return NA
    return Est(iv.estimate, iv.low, iv.high)


def _mechanism(part: NoisyPart) -> Any:
    return "gaussian" if "gauss" in part.mechanism else "laplace"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, DIGITS)


def _put(row: dict[str, Any], name: str, est: Est, integer: bool = False) -> None:
    """Set ``name`` and ``name_ci95``; a suppressed value is also listed in ``row["suppressed_values"]``."""
    value = None if est.value is None else (round(est.value) if integer else _round(est.value))
    row[name] = value
    row[f"{name}_ci95"] = est.interval()
    if est.suppressed:
        row.setdefault("suppressed_values", []).append(name)


def present(noisy: NoisyResult) -> Presented:
    """The analyst's table for one noisy result (dispatch on its template and view)."""
    key = noisy.template
    if key == "funnel" and noisy.meta.get("view") == "activity":
        key = "funnel_activity"
    try:
        presenter = PRESENTERS[key]
    except KeyError:
        raise InternalError("internal.invariant", f"no presenter for template {noisy.template!r}") from None
    shown = presenter(noisy)
    rows = [{**row, "suppressed_values": row.get("suppressed_values", [])} for row in shown.rows]
    return Presented(columns=[*shown.columns, "suppressed_values"], rows=rows, notes=shown.notes)


def omitted_notes(meta: dict[str, Any]) -> list[str]:
    """The engine's reasons for what is missing, in words an analyst can act on."""
    notes = [f"Stage {name!r} omitted: {why}." for name, why in (meta.get("stages_omitted") or {}).items()]
    notes += [f"{name} omitted: {why}." for name, why in (meta.get("omitted") or {}).items()]
    return notes


# --- funnel --------------------------------------------------------------------------------


def _funnel(noisy: NoisyResult) -> Presented:
    """Cohort funnel: per cohort cell, persons reaching each stage, stage-to-stage and cumulative conversion."""
    part, t = noisy.part("reached"), noisy.threshold
    names: list[str] = list(noisy.meta["stages"])
    dims = list(noisy.dimensions)
    index = {cell: i for i, cell in enumerate(part.cells)}
    groups = list(dict.fromkeys(cell[1:] for cell in part.cells))
    financed = names[-1] == "financed"
    steps = names[:-1] if financed else names
    rows = []
    for group in groups:
        cell_of = [index[(s, *group)] for s in names]
        # reached[k] = persons whose furthest stage is k or later (the financed branch is after sale)
        reached = [total(part, cell_of[k:], t) for k in range(len(steps))]
        for k, stage in enumerate(steps):
            row: dict[str, Any] = {**dict(zip(dims, group, strict=True)), "stage": stage}
            _put(row, "persons", reached[k], integer=True)
            _put(row, "conversion", _shown_share(reached[k], _cells(part, cell_of[k - 1 : k]), reached[k - 1]) if k else NA)
            _put(row, "cumulative_conversion", _shown_share(reached[k], _cells(part, cell_of[:k]), reached[0]) if k else NA)
            row["suppressed"] = reached[k].suppressed
            rows.append(row)
        if financed:
            row = {**dict(zip(dims, group, strict=True)), "stage": "financed"}
            fin = total(part, [cell_of[-1]], t)
            _put(row, "persons", fin, integer=True)
            _put(row, "conversion", _shown_share(fin, _cells(part, [cell_of[-2]]), total(part, cell_of[-2:], t)))
            _put(row, "cumulative_conversion", _shown_share(fin, _cells(part, cell_of[:-1]), reached[0]))
            row["suppressed"] = fin.suppressed
            rows.append(row)
    columns = [*dims, "stage", "persons", "persons_ci95", "conversion", "conversion_ci95", "cumulative_conversion",
               "cumulative_conversion_ci95", "suppressed"]
    entry = noisy.meta.get("entry", names[0])
    notes = [
        f"Cohort: persons whose first {entry} event falls in the period"
        + (f" (grouped by the {', '.join(dims)} of that event)" if dims else "")
        + f"; a stage counts when reached after the previous one and within {noisy.meta.get('window_days')} days of entry.",
        "persons: cohort persons who reached the stage; conversion: share of the previous stage's persons who reached it; "
        "cumulative_conversion: share of the cohort.",
    ]
    if financed:
        notes.append("financed: sales with a captive contract starting 7 days before to 30 days after the sale; "
                     "its conversion is the financed share of sales (captive penetration).")
    notes += [INTERVAL_NOTE, *omitted_notes(noisy.meta)]
    return Presented(columns=columns, rows=rows, notes=notes)


def _shown_share(part: Est, rest: Est, denominator: Est) -> Est:
    """A share only when its denominator count is shown too: persons / share would otherwise recover a suppressed count."""
    return SUPPRESSED if denominator.suppressed else share(part, rest)


def _cells(part: NoisyPart, indices: Sequence[int]) -> Est:
    """The complement in a share: the cells that did NOT go on, as one unsuppressed noisy sum.

    It is never shown on its own, so it is not suppressed: the share is shown when its numerator
    and the numerator + complement (the denominator) are both at or above the threshold.
    """
    raw = [part.values[i] for i in indices]
    if not indices or any(v is None for v in raw):
        return SUPPRESSED
    value = sum(int(v) for v in raw if v is not None)
    var = len(indices) * noise_variance(_mechanism(part), part.scale)
    return Est(value / part.unit, None, None, var / part.unit**2)


def _funnel_activity(noisy: NoisyResult) -> Presented:
    persons, t = noisy.part("persons"), noisy.threshold
    dims = list(noisy.dimensions)
    rows = []
    for i, cell in enumerate(persons.cells):
        row: dict[str, Any] = {"stage": cell[0], **dict(zip(dims, cell[1:], strict=True))}
        est = total(persons, [i], t)
        _put(row, "persons", est, integer=True)
        row["suppressed"] = est.suppressed
        rows.append(row)
    notes = [
        "Stage activity: distinct persons active at each stage in the period, each stage counted on its own "
        "(volumes, not conversion: a person may appear at a later stage without an earlier one).",
        INTERVAL_NOTE,
        *omitted_notes(noisy.meta),
    ]
    return Presented(columns=["stage", *dims, "persons", "persons_ci95", "suppressed"], rows=rows, notes=notes)


# --- attribution ---------------------------------------------------------------------------


def _attribution(noisy: NoisyResult) -> Presented:
    by = noisy.dimensions[0] if noisy.dimensions else "key"
    credit, t = noisy.part("credit"), noisy.threshold
    financed = len(credit.cells[0]) == 2
    values = list(dict.fromkeys(cell[0] for cell in credit.cells))
    index = {cell: i for i, cell in enumerate(credit.cells)}
    rows = [_attribution_row(credit, by, v, [index[c] for c in credit.cells if c[0] == v], financed, t) for v in values]
    rows.append(_attribution_row(credit, by, "total", list(range(len(credit.cells))), financed, t))
    columns = [by, "credited_sales", "credited_sales_ci95", "credited_financed_sales", "credited_financed_sales_ci95",
               "financed_share", "financed_share_ci95", "suppressed"]
    notes = [
        "credited_sales: sales credited to each value (fractional credit in sales, noisy); 'unattributed' holds sales without a touch; "
        "'total' is every sale (the sum of all credits).",
        "credited_financed_sales: the part of those credits from sales a captive contract financed; financed_share = financed / credited.",
        INTERVAL_NOTE,
        *omitted_notes(noisy.meta),
    ]
    return Presented(columns=columns, rows=rows, notes=notes)


def _attribution_row(credit: NoisyPart, by: str, label: str, cells: list[int], financed: bool, t: int) -> dict[str, Any]:
    row: dict[str, Any] = {by: label}
    main = total(credit, cells, t)
    _put(row, "credited_sales", main)
    if financed:
        fin_cells = [i for i in cells if credit.cells[i][1] == "financed"]
        fin = total(credit, fin_cells, t)
        rest = _cells(credit, [i for i in cells if credit.cells[i][1] != "financed"])
        _put(row, "credited_financed_sales", fin)
        _put(row, "financed_share", share(fin, rest) if not main.suppressed else SUPPRESSED)
    else:
        _put(row, "credited_financed_sales", NA)
        _put(row, "financed_share", NA)
    row["suppressed"] = main.suppressed
    return row


# --- overlap, lifecycle, sql ---------------------------------------------------------------


def _overlap(noisy: NoisyResult) -> Presented:
    venn, t = noisy.part("venn"), noisy.threshold
    rows = []
    for j in range(len(venn.cells) // 3):
        a, b, _ = venn.cells[3 * j]
        a_only, b_only, both = 3 * j, 3 * j + 1, 3 * j + 2
        pa, pb, shared = total(venn, [a_only, both], t), total(venn, [b_only, both], t), total(venn, [both], t)
        row: dict[str, Any] = {"dataset_a": a, "dataset_b": b}
        for name, est in (("persons_a", pa), ("persons_b", pb), ("shared", shared)):
            _put(row, name, est, integer=True)
        _put(row, "match_rate_a", share(shared, _cells(venn, [a_only])) if not pa.suppressed else SUPPRESSED)
        _put(row, "match_rate_b", share(shared, _cells(venn, [b_only])) if not pb.suppressed else SUPPRESSED)
        row["suppressed"] = pa.suppressed or pb.suppressed or shared.suppressed
        rows.append(row)
    values_ = ("persons_a", "persons_b", "shared", "match_rate_a", "match_rate_b")
    columns = ["dataset_a", "dataset_b"] + [f"{n}{s}" for n in values_ for s in ("", "_ci95")]
    notes = [
        "persons_a/b: consented persons in each dataset; shared: in both; match_rate_a = shared / persons_a.",
        INTERVAL_NOTE,
    ]
    return Presented(columns=columns + ["suppressed"], rows=rows, notes=notes)


def _lifecycle(noisy: NoisyResult) -> Presented:
    by = noisy.dimensions[0]
    ending, t = noisy.part("ending"), noisy.threshold
    seen_known = "seen_again" not in (noisy.meta.get("omitted") or {})
    index = {cell: i for i, cell in enumerate(ending.cells)}
    rows = []
    for segment in dict.fromkeys(cell[0] for cell in ending.cells):
        not_seen, seen = index[(segment, "not_seen")], index[(segment, "seen_again")]
        row: dict[str, Any] = {by: segment}
        end = total(ending, [not_seen, seen], t)
        again = total(ending, [seen], t) if seen_known else NA
        _put(row, "contracts_ending", end, integer=True)
        _put(row, "seen_again", again, integer=True)
        _put(row, "seen_again_rate", share(again, _cells(ending, [not_seen])) if not end.suppressed else SUPPRESSED)
        row["suppressed"] = end.suppressed
        rows.append(row)
    columns = [by] + [f"{n}{s}" for n in ("contracts_ending", "seen_again", "seen_again_rate") for s in ("", "_ci95")] + ["suppressed"]
    window = noisy.meta.get("window") or ["?", "?"]
    notes = [
        f"contracts_ending: persons with a contract ending {window[0]} to {window[1]}, in the segment of the earliest; "
        "seen_again: of those, seen at the brand or a dealer since 180 days before the end.",
        INTERVAL_NOTE,
        *omitted_notes(noisy.meta),
    ]
    return Presented(columns=columns, rows=rows, notes=notes)


def _sql(noisy: NoisyResult) -> Presented:
    dims = list(noisy.dimensions)
    first = noisy.parts[0]
    rows = []
    for i, cell in enumerate(first.cells):
        row: dict[str, Any] = dict(zip(dims, cell, strict=True))
        ests = [(p.name, total(p, [i], noisy.threshold)) for p in noisy.parts]
        for name, est in ests:
            _put(row, name, est, integer=True)
        row["suppressed"] = any(e.suppressed for _, e in ests)
        rows.append(row)
    columns = dims + [f"{p.name}{s}" for p in noisy.parts for s in ("", "_ci95")] + ["suppressed"]
    return Presented(columns=columns, rows=rows, notes=[INTERVAL_NOTE])


PRESENTERS: dict[str, Callable[[NoisyResult], Presented]] = {
    "funnel": _funnel,
    "funnel_activity": _funnel_activity,
    "attribution": _attribution,
    "overlap": _overlap,
    "lifecycle": _lifecycle,
    "sql": _sql,
}

__all__ = ["Est", "Presented", "omitted_notes", "present", "share", "total"]
