"""Which month a report covers, and what each section's template is asked for that month.

Why here and not in the policy: a policy's ``report`` block is written once and signed; the
month changes every run. The gateway resolves a section for a month with :func:`section_params`
(the only place month-relative parameters are made), so every run of the same month asks the
same question and is served the same stored release.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cleanroom.errors import QueryError

TRAILING_MONTHS = 6  # a by-month funnel shows six cohort months
DEFAULT_WINDOW_DAYS = 90  # the funnel template's default window


def parse_month(month: str) -> date:
    """The first day of ``YYYY-MM`` (``query.invalid_params`` for anything else)."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise QueryError("query.invalid_params", f"month must be YYYY-MM, got {month!r}", field="month") from None
    if first.strftime("%Y-%m") != month:
        raise QueryError("query.invalid_params", f"month must be YYYY-MM, got {month!r}", field="month")
    return first


def month_text(day: date) -> str:
    return day.strftime("%Y-%m")


def add_months(first: date, n: int) -> date:
    """The first day of the month ``n`` months after (or before) ``first``."""
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def last_complete_month(now: datetime | None = None) -> str:
    """The last complete calendar month in UTC: the default month of a report run."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return month_text(add_months(today.replace(day=1), -1))


def is_complete(month: str, now: datetime | None = None) -> bool:
    """A month is complete once the next one has begun (UTC)."""
    return add_months(parse_month(month), 1) <= (now or datetime.now(UTC)).astimezone(UTC).date()


def month_end(month: str) -> date:
    """The last day of ``month``."""
    return add_months(parse_month(month), 1) - timedelta(days=1)


def mature_cohort(month: str, window_days: int) -> str:
    """The latest cohort month whose every member's window closed by the end of ``month``."""
    end = month_end(month)
    cohort = parse_month(month)
    while month_end(month_text(cohort)) + timedelta(days=window_days) > end:
        cohort = add_months(cohort, -1)
    return month_text(cohort)


def section_params(template: str, params: dict[str, Any], dimensions: list[str], month: str, month_domain: list[str]) -> dict[str, Any]:
    """The template parameters of a report section for ``month``.

    - ``funnel``: the latest cohort whose window has closed by the end of the month (with a
      30-day window, the cohort that entered the month before: a younger cohort has not had its
      chance to convert, and comparing it with older ones would show a drop that is not there);
      grouped by month, that cohort month and the ``TRAILING_MONTHS - 1`` before it that the
      policy's month domain holds.
    - ``attribution``: sales in the month, or with ``trailing_months: n`` in the n months up to it
      (a rolling quarter has enough sales per campaign to clear the threshold).
    - ``lifecycle``: contracts ending in the next quarter (the three months after the month).
    - anything else: the section's parameters as written.
    """
    out: dict[str, Any] = dict(params)
    if template == "funnel":
        out["dimensions"] = list(dimensions)
        last = mature_cohort(month, int(out.get("window_days", DEFAULT_WINDOW_DAYS)))
        if "month" in dimensions:
            wanted = [month_text(add_months(parse_month(last), -k)) for k in range(TRAILING_MONTHS - 1, -1, -1)]
            months = [m for m in wanted if m in month_domain]
        else:
            months = [last] if last in month_domain else []
        if not months:
            raise QueryError("query.invalid_params", f"month {month} is outside the policy's month domain ({month_domain[0]} to {month_domain[-1]})",
                             field="month")
        out["filters"] = {**dict(out.get("filters") or {}), "month": months}
    elif template == "attribution":
        trailing = int(out.pop("trailing_months", 1))
        if trailing == 1:
            out["month"] = month
        else:
            out["months"] = [month_text(add_months(parse_month(month), -k)) for k in range(trailing - 1, -1, -1)]
        if dimensions:
            out["by"] = dimensions[0]
    elif template == "lifecycle":
        start = add_months(parse_month(month), 1)
        out["window_start"] = start.isoformat()
        out["window_end"] = (add_months(start, 3) - timedelta(days=1)).isoformat()
        if dimensions:
            out["by"] = dimensions[0]
    return out


__all__ = ["TRAILING_MONTHS", "add_months", "is_complete", "last_complete_month", "mature_cohort", "month_end", "month_text", "parse_month",
           "section_params"]
