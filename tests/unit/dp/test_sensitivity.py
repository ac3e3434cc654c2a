"""Sensitivity is checked against real bounded SQL: add or remove one person, measure the move.

Each SQL below enforces one kind of Bounds the way the engine must (per-person cell cap, per-cell
row cap, clamping, milli-credits summing to 1000 per person) over a full public domain. The
declared sensitivity must bound every add/remove-one-person move, and an extreme person must
reach it exactly (so the bound is tight, not merely safe).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanroom.aggregate import Bounds
from cleanroom.dp import l1_sensitivity, l2_sensitivity, l2_sensitivity_squared

DOMAIN = ["a", "b", "c", "d", "e"]

COUNT_SQL = """
WITH domain AS (SELECT unnest($domain::VARCHAR[]) AS cell),
cells AS (SELECT DISTINCT pid, cell FROM events),
bounded AS (
    SELECT pid, cell FROM (
        SELECT pid, cell, row_number() OVER (PARTITION BY pid ORDER BY cell) AS rn FROM cells
    ) WHERE rn <= $k
)
SELECT d.cell, COUNT(DISTINCT b.pid) AS v FROM domain d LEFT JOIN bounded b USING (cell)
GROUP BY d.cell ORDER BY d.cell
"""

SUM_SQL = """
WITH domain AS (SELECT unnest($domain::VARCHAR[]) AS cell),
ranked AS (
    SELECT pid, cell, value,
           row_number() OVER (PARTITION BY pid, cell ORDER BY value, rowid) AS row_in_cell,
           dense_rank() OVER (PARTITION BY pid ORDER BY cell) AS cell_rank
    FROM events
),
bounded AS (
    SELECT cell, LEAST(GREATEST(value, $lower), $upper) AS v FROM ranked
    WHERE row_in_cell <= $r AND cell_rank <= $k
)
SELECT d.cell, COALESCE(SUM(b.v), 0)::BIGINT AS v FROM domain d LEFT JOIN bounded b USING (cell)
GROUP BY d.cell ORDER BY d.cell
"""

CREDIT_SQL = """
WITH domain AS (SELECT unnest($domain::VARCHAR[]) AS cell),
kept AS (
    SELECT * FROM (
        SELECT pid, cell, value AS ts,
               row_number() OVER (PARTITION BY pid ORDER BY value DESC, cell) AS rn
        FROM events
    ) WHERE rn <= $max_touches
),
n AS (SELECT pid, COUNT(*) AS n FROM kept GROUP BY pid),
credits AS (
    SELECT k.cell, 1000 // n.n + CASE WHEN k.rn = 1 THEN 1000 % n.n ELSE 0 END AS milli
    FROM kept k JOIN n USING (pid)
)
SELECT d.cell, COALESCE(SUM(c.milli), 0)::BIGINT AS v FROM domain d LEFT JOIN credits c USING (cell)
GROUP BY d.cell ORDER BY d.cell
"""

BASE_ROWS = [(1, "a", 5), (1, "b", 7), (2, "a", 30), (2, "a", 40), (2, "c", -3), (3, "d", 12), (3, "e", 1), (3, "a", 2), (4, "b", 100)]


def insert_rows(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, str, int]]) -> None:
    """One INSERT for all rows (DuckDB's executemany runs one statement per row)."""
    if rows:
        pids, cells, values = (list(col) for col in zip(*rows, strict=True))
        con.execute("INSERT INTO events SELECT unnest($p), unnest($c), unnest($v)", {"p": pids, "c": cells, "v": values})


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("CREATE TABLE events (pid INTEGER, cell VARCHAR, value BIGINT)")
    insert_rows(c, BASE_ROWS)
    yield c
    c.close()


def run(con: duckdb.DuckDBPyConnection, sql: str, **params: object) -> list[int]:
    return [int(v) for _, v in con.execute(sql, {"domain": DOMAIN, **params}).fetchall()]


def moved(before: list[int], after: list[int]) -> tuple[int, int]:
    """(L1, squared L2) distance between two aggregate vectors."""
    diffs = [abs(x - y) for x, y in zip(before, after, strict=True)]
    return sum(diffs), sum(d * d for d in diffs)


def add_person(con: duckdb.DuckDBPyConnection, pid: int, rows: list[tuple[str, int]]) -> None:
    insert_rows(con, [(pid, c, v) for c, v in rows])


def test_count_extreme_person_moves_exactly_k(con: duckdb.DuckDBPyConnection) -> None:
    bounds = Bounds(kind="count", max_cells_per_person=3)
    before = run(con, COUNT_SQL, k=3)
    add_person(con, 99, [(c, 1) for c in DOMAIN for _ in range(4)])  # every cell, many rows
    l1, l2sq = moved(before, run(con, COUNT_SQL, k=3))
    assert l1 == l1_sensitivity(bounds) == 3
    assert l2sq == l2_sensitivity_squared(bounds) == 3
    assert l2_sensitivity(bounds) ** 2 >= 3 and math.isclose(l2_sensitivity(bounds), math.sqrt(3))


def test_sum_extreme_person_moves_exactly_k_r_m(con: duckdb.DuckDBPyConnection) -> None:
    bounds = Bounds(kind="sum", max_cells_per_person=2, max_rows_per_cell=3, lower=-50, upper=20)
    params = {"k": 2, "r": 3, "lower": -50, "upper": 20}
    before = run(con, SUM_SQL, **params)
    add_person(con, 99, [(c, -10_000) for c in DOMAIN for _ in range(5)])  # below the clamp everywhere
    l1, l2sq = moved(before, run(con, SUM_SQL, **params))
    assert l1 == l1_sensitivity(bounds) == 2 * 3 * 50
    assert l2sq == l2_sensitivity_squared(bounds) == 2 * (3 * 50) ** 2


def test_sum_uses_the_larger_bound_magnitude(con: duckdb.DuckDBPyConnection) -> None:
    bounds = Bounds(kind="sum", max_cells_per_person=1, max_rows_per_cell=2, lower=0, upper=500)
    params = {"k": 1, "r": 2, "lower": 0, "upper": 500}
    before = run(con, SUM_SQL, **params)
    add_person(con, 99, [("c", 10**9)] * 3)
    l1, _ = moved(before, run(con, SUM_SQL, **params))
    assert l1 == l1_sensitivity(bounds) == 1000


def test_credit_person_moves_at_most_1000(con: duckdb.DuckDBPyConnection) -> None:
    bounds = Bounds(kind="credit", max_cells_per_person=3, per_person_total=1000)
    before = run(con, CREDIT_SQL, max_touches=3)
    add_person(con, 98, [("a", 1), ("b", 2), ("c", 3), ("d", 4)])  # spread over 3 touches
    spread = run(con, CREDIT_SQL, max_touches=3)
    l1, l2sq = moved(before, spread)
    assert l1 == l1_sensitivity(bounds) == 1000
    assert l2sq < l2_sensitivity_squared(bounds)
    add_person(con, 99, [("e", 1)])  # one touch: all the credit in one cell reaches the L2 bound
    l1, l2sq = moved(spread, run(con, CREDIT_SQL, max_touches=3))
    assert (l1, l2sq) == (1000, l2_sensitivity_squared(bounds)) and l2_sensitivity(bounds) == 1000.0


def test_l2_sensitivity_never_rounds_down() -> None:
    for k in range(1, 300):
        root = l2_sensitivity(Bounds(kind="count", max_cells_per_person=k))
        assert Fraction(root) ** 2 >= k
        assert Fraction(math.nextafter(root, 0.0)) ** 2 < k  # and is the smallest such float


rows_strategy = st.lists(
    st.tuples(st.integers(1, 6), st.sampled_from(DOMAIN), st.integers(-300, 300)), min_size=0, max_size=25
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, k=st.integers(1, 4), r=st.integers(1, 3), removed=st.integers(1, 6))
def test_removing_any_person_moves_no_further_than_declared(rows: list[tuple[int, str, int]], k: int, r: int, removed: int) -> None:
    c = duckdb.connect()
    c.execute("CREATE TABLE events (pid INTEGER, cell VARCHAR, value BIGINT)")
    insert_rows(c, rows)
    cases = [
        (COUNT_SQL, {"k": k}, Bounds(kind="count", max_cells_per_person=k)),
        (SUM_SQL, {"k": k, "r": r, "lower": -40, "upper": 25}, Bounds(kind="sum", max_cells_per_person=k, max_rows_per_cell=r, lower=-40, upper=25)),
        (CREDIT_SQL, {"max_touches": k}, Bounds(kind="credit", max_cells_per_person=k, per_person_total=1000)),
    ]
    before = [run(c, sql, **p) for sql, p, _ in cases]
    c.execute("DELETE FROM events WHERE pid = ?", [removed])
    for (sql, params, bounds), old in zip(cases, before, strict=True):
        l1, l2sq = moved(old, run(c, sql, **params))
        assert l1 <= l1_sensitivity(bounds)
        assert l2sq <= l2_sensitivity_squared(bounds)
    c.close()
