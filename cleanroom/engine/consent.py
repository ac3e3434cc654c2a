"""Consent as SQL: the set of persons one partner may contribute, evaluated at query time.

Each partner is its own controller: a row of partner P counts only when P's own ``consent``
dataset holds an ACTIVE grant (``granted_at <= now`` and not revoked by ``now``) for EVERY purpose
the template requires. One CTE per partner computes that person set (materialized: every source
of the partner reads it) and sources keep their rows with a semi-join on it. Purposes are OR-ed as
bits and compared with the full mask, several times cheaper than ``count(DISTINCT purpose)``
on a million persons. Consent is never borrowed across partners, so a person who consented
only to the brand contributes nothing from a dealer's data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cleanroom.engine._sql import Cte, ident, lit, lit_list, ts_lit
from cleanroom.engine.scope import Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import InternalError, PolicyError

CONSENT_DATASET = "consent"
PURPOSE, GRANTED, REVOKED = "purpose", "granted_at", "revoked_at"


def consent_cte_name(partner: str) -> str:
    return "ok_" + partner.replace("-", "_")


def consent_qualified(partner: str) -> str:
    return f"{partner}.{CONSENT_DATASET}"


def consent_cte(scope: Scope, partner: str, needed_by: str) -> Cte:
    """The persons with an active grant for every required purpose in ``partner``'s own consent.

    A missing consent dataset is an error rather than "nobody consented": a silently empty
    result would look like real zeros to the analyst.
    """
    qualified = consent_qualified(partner)
    if qualified not in scope.datasets:
        raise PolicyError(
            "policy.dataset_not_in_scope",
            f"{needed_by} must be checked against {qualified}, which is not in the policy's scope",
            dataset=qualified,
        )
    ref = scope.datasets[qualified]
    purposes = sorted(set(scope.consent_purposes))
    body = active_persons_sql(ident(ref.view), purposes, scope.now)
    comment = f"{partner}: persons with an active grant for each of {', '.join(purposes)}"
    return Cte(consent_cte_name(partner), body, comment=comment, materialized=True)


def active_persons_sql(relation: str, purposes: Iterable[str], now: datetime) -> str:
    """The person set of one consent relation: an active grant at ``now`` for every one of ``purposes``.

    One text for both users of it, so they cannot drift apart: the engine's per-query consent CTE
    (over a view) and the store's consented-rows tables (over a version table, see
    docs/explanation/storage.md). ``relation`` is an identifier the caller generated or validated.
    """
    wanted = sorted(set(purposes))
    if not wanted:
        raise InternalError("internal.invariant", "a consent set needs at least one purpose")
    at = ts_lit(now)
    bits = " ".join(f"WHEN {lit(p)} THEN {1 << i}" for i, p in enumerate(wanted))
    return (
        f"SELECT {PERSON}\n"
        f"FROM {relation}\n"
        f"WHERE {PURPOSE} IN {lit_list(wanted)}\n"
        f"  AND {GRANTED} <= {at}\n"
        f"  AND ({REVOKED} IS NULL OR {REVOKED} > {at})\n"
        f"GROUP BY {PERSON}\n"
        f"HAVING bit_or(CASE {PURPOSE} {bits} END) = {(1 << len(wanted)) - 1}"
    )


def next_change_sql(relations: Iterable[str], now: datetime) -> str:
    """SQL for the first grant or revocation after ``now`` in these consent relations (NULL: none).

    Until that moment :func:`active_persons_sql` gives the same persons for any later ``now``, so
    it bounds how long a consent-dependent answer (a cached result, a consented-rows table) is valid.
    """
    at = ts_lit(now)
    parts = [f"SELECT min({col}) FILTER (WHERE {col} > {at}) AS t FROM {rel}" for rel in relations for col in (GRANTED, REVOKED)]
    if not parts:
        raise InternalError("internal.invariant", "a consent horizon needs at least one consent relation")
    return "SELECT min(t) FROM (\n  " + "\n  UNION ALL ".join(parts) + "\n)"


def consent_predicate(partner: str) -> str:
    return f"{PERSON} IN (SELECT {PERSON} FROM {ident(consent_cte_name(partner))})"


def consent_horizon_sql(scope: Scope, qualified: list[str]) -> str:
    """SQL for the next moment after ``scope.now`` at which any of these consent datasets changes.

    A grant or revocation dated in the future changes who counts once it passes, so a cached
    result is only valid until then: the release path puts this moment into the cache key, and an
    identical query after it is computed afresh (and charged) instead of replaying stale consent.
    """
    return next_change_sql([ident(scope.datasets[q].view) for q in sorted(qualified)], scope.now)


__all__ = [
    "CONSENT_DATASET", "active_persons_sql", "consent_cte", "consent_cte_name", "consent_horizon_sql", "consent_predicate",
    "consent_qualified", "next_change_sql",
]
