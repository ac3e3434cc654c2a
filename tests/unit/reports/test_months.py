"""Which month a report covers and what each section asks for it (pure functions, no gateway)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cleanroom.errors import QueryError
from cleanroom.reports.months import is_complete, last_complete_month, mature_cohort, parse_month, section_params

DOMAIN = [f"2025-{m:02d}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)]


def test_the_default_month_is_the_last_complete_one_in_utc() -> None:
    assert last_complete_month(datetime(2026, 12, 5, tzinfo=UTC)) == "2026-11"
    assert last_complete_month(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2025-12"
    assert is_complete("2026-11", datetime(2026, 12, 1, tzinfo=UTC)) and not is_complete("2026-12", datetime(2026, 12, 31, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-01", "", "2026-01-01"])
def test_a_month_is_yyyy_mm(bad: str) -> None:
    with pytest.raises(QueryError):
        parse_month(bad)


def test_funnels_show_only_cohorts_whose_window_has_closed() -> None:
    assert mature_cohort("2026-10", 30) == "2026-09"  # 30 Sep + 30 days = 30 Oct
    assert mature_cohort("2026-10", 90) == "2026-07"
    assert mature_cohort("2026-03", 30) == "2026-02"  # 28 Feb + 30 days = 30 Mar
    assert mature_cohort("2026-02", 30) == "2025-12"  # 31 Jan + 30 days = 2 Mar, after 28 Feb
    assert all(mature_cohort(f"2026-{m:02d}", 28) == f"2026-{m - 1:02d}" for m in range(2, 13)), "4 weeks: always the month before"
    by_month = section_params("funnel", {"window_days": 30}, ["month"], "2026-10", DOMAIN)
    assert by_month["filters"]["month"] == ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]
    assert section_params("funnel", {"entry": "lead", "window_days": 30}, ["dealer_group"], "2026-10", DOMAIN)["filters"] == {"month": ["2026-09"]}
    with pytest.raises(QueryError):
        section_params("funnel", {}, ["model"], "2025-11", DOMAIN)  # its mature cohort predates the domain


def test_attribution_and_lifecycle_get_the_month_and_the_next_quarter() -> None:
    assert section_params("attribution", {"model": "linear"}, ["channel"], "2026-10", DOMAIN) == {"model": "linear", "month": "2026-10", "by": "channel"}
    quarter = section_params("attribution", {"model": "linear", "trailing_months": 3}, ["campaign"], "2026-10", DOMAIN)
    assert quarter == {"model": "linear", "months": ["2026-08", "2026-09", "2026-10"], "by": "campaign"}
    life = section_params("lifecycle", {}, ["product"], "2026-10", DOMAIN)
    assert (life["window_start"], life["window_end"], life["by"]) == ("2026-11-01", "2027-01-31", "product")
