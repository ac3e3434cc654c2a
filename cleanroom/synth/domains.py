"""Public domains of the demo collaboration, the data period and the metric parameters.

These values are shared by three parties that must agree exactly: the synthetic data (every
value it writes lies in these lists), the demo policy (its public domains) and the ground truth
(its cells cover these lists, zeros included). Other modules import them from here rather than
retyping them, so a domain change is one edit.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

MODELS: Final = ("aster", "borealis", "cirrus", "dune", "ember", "fjord")
REGIONS: Final = ("north", "south", "east", "west", "central")
CHANNELS: Final = ("search", "social", "display", "email", "direct", "video")
CAMPAIGNS: Final = (
    "spring_launch",
    "summer_drive",
    "autumn_ev",
    "winter_service",
    "loyalty_upgrade",
    "fleet_offer",
    "ev_test_week",
    "brand_always_on",
)
LEAD_SOURCES: Final = ("web", "walk_in", "phone", "event")
DEALER_GROUPS: Final = ("northside-dealers", "lakeside-autos")
DEALERS: Final = {
    "northside-dealers": ("NS-01", "NS-02", "NS-03", "NS-04", "NS-05", "NS-06"),
    "lakeside-autos": ("LA-01", "LA-02", "LA-03", "LA-04"),
}
DEALER_IDS: Final = DEALERS["northside-dealers"] + DEALERS["lakeside-autos"]
PRICE_BANDS: Final = ("<30k", "30-45k", "45-60k", "60k+")
AMOUNT_BANDS: Final = ("<20k", "20-35k", "35-50k", "50k+")
PRODUCTS: Final = ("loan", "lease", "balloon")
DECISIONS: Final = ("approved", "declined")
CONFIGURATOR_COMPLETED: Final = ("true", "false")
PURPOSES: Final = ("measurement", "attribution", "analytics")

BRAND: Final = "aurora-motors"
FINANCE: Final = "aurora-financial"
DEFAULT_PHONE_REGION: Final = "DE"
DEFAULT_END_DATE: Final = date(2026, 10, 31)

# Consent purposes each query template requires (policy `templates.<t>.consent` of the demo).
TEMPLATE_CONSENT: Final = {
    "funnel": ("measurement",),
    "attribution": ("measurement", "attribution"),
    "overlap": ("measurement",),
    "lifecycle": ("measurement",),
    "sql": ("measurement",),
}

# Funnel stages in order, each with the (role, dataset, time column) rows that reach it.
STAGES: Final = (
    ("configurator", "brand", "web_sessions", "session_at"),
    ("lead", "dealer", "leads", "lead_at"),
    ("test_drive", "dealer", "test_drives", "drive_at"),
    ("application", "finance", "applications", "applied_at"),
    ("sale", "dealer", "sales", "sold_at"),
    ("contract", "finance", "contracts", "start_date"),
)
FUNNEL_DIMENSIONS: Final = ("model", "region", "channel", "dealer_group", "month")
MAX_GROUPS_PER_PERSON: Final = 4
MAX_ROWS_PER_PERSON: Final = 50  # policy `privacy.max_rows_per_person`: each person's earliest rows per dataset

# The cohort funnel (engine/templates/funnel.py) by entry: its stages as (name, role, dataset,
# row condition or None). A person reaches a stage at or after the previous one and within
# FUNNEL_WINDOW_DAYS of entry; after `sale` comes the `financed` branch (FINANCED_* days below).
COHORT_FUNNELS: Final = {
    "configurator": (
        ("configurator", "brand", "web_sessions", None),
        ("lead", "dealer", "leads", None),
        ("test_drive", "dealer", "test_drives", None),
        ("sale", "dealer", "sales", None),
    ),
    "lead": (
        ("lead", "dealer", "leads", None),
        ("test_drive", "dealer", "test_drives", None),
        ("sale", "dealer", "sales", None),
    ),
    "application": (
        ("application", "finance", "applications", None),
        ("approved", "finance", "applications", ("decision", "approved")),
        ("contract", "finance", "contracts", None),
    ),
}
# The groupings the ground truth reports for each entry, besides the ungrouped cohort.
COHORT_GROUPINGS: Final = {"configurator": ("model", "month"), "lead": ("dealer_group",), "application": ()}
FUNNEL_WINDOW_DAYS: Final = 90
FINANCED: Final = "financed"
MEDIAN_DAYS_CAP: Final = 365

ATTRIBUTION_MODELS: Final = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
LOOKBACK_DAYS: Final = 30
HALF_LIFE_DAYS: Final = 7
MAX_TOUCHES: Final = 10
FINANCED_BEFORE_DAYS: Final = 7
FINANCED_AFTER_DAYS: Final = 30

LIFECYCLE_SEGMENTS: Final = ("product", "amount_band", "model")
SEEN_AGAIN_DAYS: Final = 180


def months(end_date: date = DEFAULT_END_DATE) -> tuple[str, ...]:
    """The twelve `YYYY-MM` months of the data period, ending with ``end_date``'s month."""
    index = end_date.year * 12 + end_date.month - 1
    return tuple(f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - 11, index + 1))


def period_start(end_date: date = DEFAULT_END_DATE) -> date:
    """First day of the data period (the first day of its first month)."""
    year, month = months(end_date)[0].split("-")
    return date(int(year), int(month), 1)


def lifecycle_window(end_date: date = DEFAULT_END_DATE) -> tuple[date, date]:
    """The quarter after the data period: the three whole months following ``end_date``'s month."""
    index = end_date.year * 12 + end_date.month
    start = date(index // 12, index % 12 + 1, 1)
    after = index + 3
    return start, date(after // 12, after % 12 + 1, 1) - timedelta(days=1)


DOMAINS: Final = {
    "model": MODELS,
    "region": REGIONS,
    "channel": CHANNELS,
    "campaign": CAMPAIGNS,
    "source": LEAD_SOURCES,
    "dealer_id": DEALER_IDS,
    "dealer_group": DEALER_GROUPS,
    "price_band": PRICE_BANDS,
    "amount_band": AMOUNT_BANDS,
    "product": PRODUCTS,
    "decision": DECISIONS,
    "configurator_completed": CONFIGURATOR_COMPLETED,
    "purpose": PURPOSES,
    "month": months(),
}
"""Dimension name -> public domain for the default data period (``month`` follows ``months()``)."""

__all__ = [
    "AMOUNT_BANDS",
    "ATTRIBUTION_MODELS",
    "BRAND",
    "CAMPAIGNS",
    "CHANNELS",
    "COHORT_FUNNELS",
    "COHORT_GROUPINGS",
    "CONFIGURATOR_COMPLETED",
    "DEALERS",
    "DEALER_GROUPS",
    "DEALER_IDS",
    "DECISIONS",
    "DEFAULT_END_DATE",
    "DEFAULT_PHONE_REGION",
    "DOMAINS",
    "FINANCE",
    "FINANCED",
    "FINANCED_AFTER_DAYS",
    "FINANCED_BEFORE_DAYS",
    "FUNNEL_DIMENSIONS",
    "FUNNEL_WINDOW_DAYS",
    "HALF_LIFE_DAYS",
    "LEAD_SOURCES",
    "LIFECYCLE_SEGMENTS",
    "LOOKBACK_DAYS",
    "MAX_GROUPS_PER_PERSON",
    "MAX_ROWS_PER_PERSON",
    "MAX_TOUCHES",
    "MEDIAN_DAYS_CAP",
    "MODELS",
    "PRICE_BANDS",
    "PRODUCTS",
    "PURPOSES",
    "REGIONS",
    "SEEN_AGAIN_DAYS",
    "STAGES",
    "TEMPLATE_CONSENT",
    "lifecycle_window",
    "months",
    "period_start",
]
