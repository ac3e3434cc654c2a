"""What the demo's analysts ask, and how their noisy answers are shown next to the ground truth.

The ground truth comes from the synthetic generator's separate file, which no party of a real
collaboration has: it is here only so a newcomer can see that the released numbers are close to
the truth and that the truth lies within the reported 95% intervals most of the time.
"""

from __future__ import annotations

from typing import Any

from cleanroom.cli._common import console
from cleanroom.cli._results import display_columns, display_rows, num, table

# (who, template, params, epsilon): who is a key of demo.ANALYSTS.
PLAN: list[tuple[str, str, dict[str, Any], float]] = [
    ("dealer", "funnel", {"dimensions": ["model"]}, 1.0),
    ("dealer", "overlap", {"datasets": ["northside-dealers.sales", "aurora-motors.web_sessions"]}, 0.3),
    ("dealer", "attribution", {"model": "last_touch", "by": "campaign"}, 0.5),
    ("dealer", "overlap", {"datasets": ["northside-dealers.sales", "aurora-financial.contracts"]}, 0.3),
    ("brand", "funnel", {}, 0.5),
    ("brand", "attribution", {"model": "position_based", "by": "campaign"}, 0.5),
    ("brand", "attribution", {"model": "linear", "by": "channel"}, 0.5),
    ("brand", "lifecycle", {"window_start": "2026-11-01", "window_end": "2027-01-31", "by": "product"}, 0.5),
]


def show(result: Any, truth: dict[str, Any], template: str, params: dict[str, Any]) -> None:
    """Print the released table as ``value ±half-interval``, with a ``truth`` column where known."""
    columns = list(result.columns)
    lookup = TRUTH.get(template)
    rows = []
    for record, cells in display_rows(columns, [list(r) for r in result.rows]):
        if lookup:
            expected = lookup(truth, params, record)
            cells.append("-" if expected is None else num(expected))
        rows.append(cells)
    title = f"{template}: epsilon charged {result.epsilon_charged:g}, {result.suppressed_cells} suppressed cells"
    console.print(table(title, display_columns(columns) + (["truth"] if lookup else []), rows))
    for n in result.noise:
        console.print(f"  {n.part}: {n.mechanism} noise, scale {n.scale:.3g} per released cell", style="dim", highlight=False)
    for note in result.notes:
        if note.startswith(("Stage", "credited_financed_sales omitted", "seen_again omitted", "financed omitted")):
            console.print(f"  note: {note}", style="dim", highlight=False, markup=False)


def _funnel(truth: dict[str, Any], params: dict[str, Any], rec: dict[str, Any]) -> Any:
    """Persons reaching the stage in the cohort funnel (ground truth computed from the raw files)."""
    cohort = truth["funnel"]["cohort"].get(params.get("entry", "configurator"), {})
    dims = params.get("dimensions") or []
    stage = rec.get("stage")
    if "persons" not in rec or stage is None or params.get("filters"):
        return None
    if not dims:
        return cohort.get("overall", {}).get("persons", {}).get(stage)
    if len(dims) == 1 and dims[0] in cohort.get("by", {}):
        return cohort["by"][dims[0]]["cells"].get(str(rec.get(dims[0])), {}).get("persons", {}).get(stage)
    return None


def _attribution(truth: dict[str, Any], params: dict[str, Any], rec: dict[str, Any]) -> Any:
    by = params.get("by", "campaign")
    model = params.get("model", "last_touch")
    cell = truth["attribution"]["by"].get(by, {}).get(model, {}).get(str(rec.get(by)))
    return None if cell is None else round(cell["credited_sales"], 1)


def _lifecycle(truth: dict[str, Any], params: dict[str, Any], rec: dict[str, Any]) -> Any:
    by = params.get("by", "product")
    cell = truth["lifecycle"]["by"].get(by, {}).get(str(rec.get(by)))
    return None if cell is None else cell["contracts_ending"]


TRUTH = {"funnel": _funnel, "attribution": _attribution, "lifecycle": _lifecycle}
