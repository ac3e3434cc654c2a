"""Restricted SQL allow/deny lists (after datasette's tests/test_utils.py): everything outside one
aggregate shape over entitled views is rejected with a stable code naming the construct."""

from __future__ import annotations

import engine_journeys as journeys
import pytest
from engine_kit import Tables, make_scope, values_of

from cleanroom.engine import compile_query, execute
from cleanroom.errors import CleanroomError

SALES = "northside_dealers__sales"

DENY: list[tuple[str, str]] = [
    ("SELECT 1; COPY northside_dealers__sales TO '/tmp/x.csv'", "statements"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES}; DROP TABLE {SALES}", "statements"),
    ("LOAD httpfs", "Command"),
    ("INSTALL httpfs", "Install"),
    ("ATTACH 'x.db' AS x", "Attach"),
    ("PRAGMA version", "Pragma"),
    (f"COPY {SALES} TO '/tmp/x.csv'", "Copy"),
    (f"DELETE FROM {SALES}", "Delete"),
    ("SET threads = 1", "Set"),
    (f"SELECT * FROM {SALES}", "Star"),
    (f"SELECT pid FROM {SALES}", "select"),
    (f"SELECT model FROM {SALES} GROUP BY model", "aggregate"),
    (f"SELECT COUNT(*) FROM {SALES}", "count"),
    (f"SELECT COUNT(pid) FROM {SALES}", "count"),
    (f"SELECT COUNT(DISTINCT model) FROM {SALES}", "count"),
    (f"SELECT AVG(price_eur) FROM {SALES}", "Avg"),
    (f"SELECT MAX(price_eur) FROM {SALES}", "Max"),
    (f"SELECT SUM(model) FROM {SALES}", "sum"),
    (f"SELECT SUM(salesperson) FROM {SALES}", "sum"),
    (f"SELECT SUM(price_eur + 1) FROM {SALES}", "sum"),
    (f"SELECT md5(model), COUNT(DISTINCT pid) FROM {SALES} GROUP BY 1", "group by"),
    (f"SELECT foo(pid) FROM {SALES}", "Anonymous"),
    ("SELECT COUNT(DISTINCT pid) FROM read_csv('/etc/passwd')", "table"),
    ("SELECT COUNT(DISTINCT pid) FROM '/etc/passwd'", "table"),
    (f"SELECT COUNT(DISTINCT pid) FROM main.{SALES}", "db"),
    (f"SELECT COUNT(DISTINCT pid) FROM store.main.{SALES}", "db"),
    ("SELECT COUNT(DISTINCT pid) FROM northside_dealers__consent", "table"),
    ("SELECT COUNT(DISTINCT pid) FROM duckdb_settings()", "table"),
    ("SELECT COUNT(DISTINCT pid) FROM some_other_table", "table"),
    (f"SELECT COUNT(DISTINCT pid) FROM (SELECT * FROM {SALES})", "table"),
    (f"WITH s AS (SELECT * FROM {SALES}) SELECT COUNT(DISTINCT pid) FROM s", "with"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} UNION SELECT COUNT(DISTINCT pid) FROM {SALES}", "Union"),
    (f"SELECT DISTINCT COUNT(DISTINCT pid) FROM {SALES}", "distinct"),
    (f"SELECT model, COUNT(DISTINCT pid) FROM {SALES} GROUP BY model HAVING COUNT(DISTINCT pid) > 1", "having"),
    (f"SELECT model, COUNT(DISTINCT pid) FROM {SALES} GROUP BY model ORDER BY model", "order"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} LIMIT 1", "limit"),
    (f"SELECT model, COUNT(DISTINCT pid) FROM {SALES} GROUP BY model QUALIFY 1 = 1", "qualify"),
    (f"SELECT model, COUNT(DISTINCT pid) FROM {SALES} GROUP BY ROLLUP (model)", "group by"),
    (f"SELECT model, COUNT(DISTINCT pid) FROM {SALES} GROUP BY GROUPING SETS ((model), ())", "group by"),
    (f"SELECT price_eur, COUNT(DISTINCT pid) FROM {SALES} GROUP BY price_eur", "policy.dimension_not_allowed"),
    (f"SELECT salesperson, COUNT(DISTINCT pid) FROM {SALES} GROUP BY salesperson", "group by"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE region = 'north' OR region = 'south'", "where"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE NOT region = 'north'", "where"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE region LIKE 'n%'", "where"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE price_eur > 30000", "where"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE region = model", "literal"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE region IN (SELECT region FROM {SALES})", "where"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE pid = '1'", "where"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE price_band = '<30k'", "policy.filter_not_allowed"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE region = 'atlantis'", "literal"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE region = 1", "literal"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} s LEFT JOIN aurora_motors__web_sessions w USING (pid)", "join"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} s JOIN aurora_motors__web_sessions w ON s.pid = w.pid", "join"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} CROSS JOIN aurora_motors__web_sessions", "join"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} NATURAL JOIN aurora_motors__web_sessions", "join"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} JOIN aurora_motors__web_sessions USING (model)", "join"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} a JOIN {SALES} b USING (pid)", "self_join"),
    (f"SELECT model, COUNT(DISTINCT pid) FROM {SALES} JOIN lakeside_autos__sales USING (pid) GROUP BY model", "group by"),
    (f"SELECT x.model, COUNT(DISTINCT pid) FROM {SALES} GROUP BY x.model", "group by"),
    (f"SELECT s.model, w.model, COUNT(DISTINCT pid) FROM {SALES} s JOIN aurora_motors__web_sessions w USING (pid) GROUP BY s.model, w.model", "group by"),
    (f"SELECT COUNT(DISTINCT pid) AS \"Bad Name\" FROM {SALES}", "alias"),
    (f"SELECT COUNT(DISTINCT pid) AS n, SUM(price_eur) AS n FROM {SALES}", "alias"),
    (f"SELECT model, region, COUNT(DISTINCT pid) FROM {SALES} GROUP BY model", "group by"),
    ("SELEC COUNT(DISTINCT pid) FROM x", "syntax"),
    ("", "statements"),
    ("SELECT COUNT(DISTINCT pid) FROM " + "x" * 10_001, "length"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE " + "(" * 45 + "region = 'north'" + ")" * 45, "depth"),  # was a RecursionError (500)
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE " + "NOT " * 60 + "region = 'north'", "depth"),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE " + "- " * 40 + "1 = 1", "depth"),
    ("SELECT " + ", ".join(["1"] * 1_500) + f" FROM {SALES}", "length"),
]


@pytest.mark.parametrize(("sql", "construct"), DENY, ids=[f"deny-{i}" for i in range(len(DENY))])
def test_denied(sql: str, construct: str) -> None:
    with pytest.raises(CleanroomError) as err:
        compile_query("sql", {"sql": sql}, make_scope())
    if construct.startswith("policy."):
        assert err.value.code == construct
    else:
        assert err.value.code == "query.sql_rejected", err.value
        assert err.value.details["construct"] == construct, err.value.message


def test_a_join_the_policy_does_not_approve() -> None:
    sql = f"SELECT COUNT(DISTINCT pid) FROM {SALES} JOIN aurora_motors__web_sessions USING (pid)"
    with pytest.raises(CleanroomError) as err:
        compile_query("sql", {"sql": sql}, make_scope(approved_joins=frozenset()))
    assert err.value.code == "policy.join_not_approved"


def test_a_dimension_without_public_domain() -> None:
    domains = {k: v for k, v in make_scope().domains.items() if k != "dealer_id"}
    with pytest.raises(CleanroomError) as err:
        compile_query("sql", {"sql": f"SELECT dealer_id, COUNT(DISTINCT pid) FROM {SALES} GROUP BY dealer_id"}, make_scope(domains=domains))
    assert err.value.code == "policy.dimension_not_allowed"


def test_a_sum_without_clamp_bounds() -> None:
    with pytest.raises(CleanroomError) as err:
        compile_query("sql", {"sql": f"SELECT SUM(price_eur) FROM {SALES}"}, make_scope(measure_bounds={}))
    assert err.value.code == "query.sql_rejected" and "clamp bounds" in err.value.message


ALLOW: list[tuple[str, dict[str, dict[str, int]]]] = [
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES}", {"persons": {"": 2}}),
    (f"select count(distinct PID) as n from {SALES.upper()};", {"n": {"": 2}}),
    (f"SELECT COUNT(DISTINCT pid) FROM {SALES} -- a comment", {"persons": {"": 2}}),
    (f"SELECT model, COUNT(DISTINCT pid) AS buyers FROM {SALES} GROUP BY model", {"buyers": {"aster": 1, "cirrus": 1}}),
    (f"SELECT region, model, COUNT(DISTINCT pid) FROM {SALES} WHERE model = 'aster' GROUP BY region, model", {"persons": {"north|aster": 1}}),
    (f"SELECT SUM(price_eur) AS revenue FROM {SALES} WHERE (region IN ('south'))", {"persons": {"": 1}, "revenue": {"": 27000}}),
    (
        "SELECT w.channel, COUNT(DISTINCT pid) FROM aurora_motors__web_sessions AS w "
        "JOIN lakeside_autos__leads USING (pid) JOIN lakeside_autos__test_drives USING (pid) GROUP BY w.channel",
        {"persons": {"search": 1}},
    ),
    ("SELECT product, COUNT(DISTINCT pid), SUM(amount_eur) FROM aurora_financial__contracts GROUP BY product",
     {"persons": {"loan": 1, "lease": 1, "balloon": 1}, "sum_amount_eur": {"loan": 30000, "lease": 40000, "balloon": 15000}}),
]


@pytest.mark.parametrize(("sql", "expected"), ALLOW, ids=[f"allow-{i}" for i in range(len(ALLOW))])
def test_allowed(sql: str, expected: dict[str, dict[str, int]]) -> None:
    tables = journeys.load(Tables())
    result = execute(compile_query("sql", {"sql": sql}, make_scope()), tables.con)
    assert {p.name: values_of(result, p.name) for p in result.parts} == expected


def test_a_sum_is_guarded_by_the_person_count_of_its_cell() -> None:
    compiled = compile_query("sql", {"sql": f"SELECT model, SUM(price_eur) FROM {SALES} GROUP BY model"}, make_scope())
    guard, total = compiled.parts
    assert guard.name == "persons" and guard.bounds.kind == "count"
    assert total.guard == "persons" and total.guard_cells == list(range(6))


def test_the_callers_text_never_reaches_duckdb() -> None:
    sql = f"SELECT model, COUNT(DISTINCT pid) /* hidden */ FROM {SALES} WHERE region = 'north' GROUP BY model"
    compiled = compile_query("sql", {"sql": sql}, make_scope())
    assert "hidden" not in compiled.sql and compiled.params == {"sql": sql}
