"""The privacy budget: exact epsilon values, the durable ledger and the release cache.

Knows nothing of HTTP or OpenDP: the gateway charges here *before* a query touches data, and
stores the noisy payload here so that an identical query is answered from the cache.
"""

from __future__ import annotations

from cleanroom.budget.epsilon import MAX_EPSILON, MICRO, Epsilon
from cleanroom.budget.ledger import Charge, Ledger, Limits, Purpose, Remaining, StoredResult
from cleanroom.budget.summary import BudgetSummary, MonthSummary, PartnerMonth, summarize

__all__ = [
    "MAX_EPSILON",
    "MICRO",
    "BudgetSummary",
    "Charge",
    "Epsilon",
    "Ledger",
    "Limits",
    "MonthSummary",
    "PartnerMonth",
    "Purpose",
    "Remaining",
    "StoredResult",
    "summarize",
]
