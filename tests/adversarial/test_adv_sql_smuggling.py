"""SQL smuggling: every construct the restricted grammar refuses, sent by a malicious brand analyst.

Attack: get row-level data, another table, a file or a catalog out of the SQL endpoint by hiding
it in something that parses (joins not approved, subqueries reading ``pid``, window functions,
UNION, LIMIT 1 to single out a row, table functions such as ``read_csv``, ``PRAGMA``, ``ATTACH``,
comments, quoting and case tricks, deep nesting, huge inputs). Sources: the OWASP SQL injection
catalogue and the restricted-SQL designs of clean rooms (Qrlew, SmartNoise SQL), whose published
bypasses are exactly such constructs.

Defence: ``cleanroom.engine.restricted_sql`` parses with sqlglot, allows one aggregate shape node
by node and rewrites it; the text never reaches DuckDB. Expected: a 4xx problem with a documented
code, never a 500, never a row, never a charge.
"""

from __future__ import annotations

import pytest
from _live_helpers import check_problem
from adversary import BRAND, World

from cleanroom.errors import CODES

WS, SALES, CONTRACTS, CONSENT = "aurora_motors__web_sessions", "northside_dealers__sales", "aurora_financial__contracts", "aurora_motors__consent"
ATTACKS: list[tuple[str, str]] = [
    ("row-level select", f"SELECT * FROM {WS}"),
    ("row-level pid", f"SELECT pid FROM {WS}"),
    ("pid grouped", f"SELECT pid, COUNT(DISTINCT pid) FROM {WS} GROUP BY pid"),
    ("hid column", f"SELECT hid, COUNT(DISTINCT pid) FROM {WS} GROUP BY hid"),
    ("count star", f"SELECT COUNT(*) FROM {WS}"),
    ("count non-distinct", f"SELECT COUNT(pid) FROM {WS}"),
    ("min of pid", f"SELECT MIN(pid) FROM {WS}"),
    ("max measure", f"SELECT MAX(price_eur) FROM {SALES}"),
    ("avg measure", f"SELECT AVG(price_eur) FROM {SALES}"),
    ("limit 1", f"SELECT COUNT(DISTINCT pid) FROM {WS} LIMIT 1"),
    ("order by", f"SELECT model, COUNT(DISTINCT pid) FROM {WS} GROUP BY model ORDER BY model"),
    ("having small cell", f"SELECT model, COUNT(DISTINCT pid) FROM {WS} GROUP BY model HAVING COUNT(DISTINCT pid) = 1"),
    ("window function", f"SELECT row_number() OVER (ORDER BY pid) FROM {WS}"),
    ("window in aggregate", f"SELECT COUNT(DISTINCT pid) OVER () FROM {WS}"),
    ("union", f"SELECT COUNT(DISTINCT pid) FROM {WS} UNION SELECT COUNT(DISTINCT pid) FROM {SALES}"),
    ("union all", f"SELECT COUNT(DISTINCT pid) FROM {WS} UNION ALL SELECT COUNT(DISTINCT pid) FROM {SALES}"),
    ("subquery in from", f"SELECT COUNT(DISTINCT pid) FROM (SELECT pid FROM {WS} WHERE pid = 1)"),
    ("subquery in where", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE pid IN (SELECT pid FROM {SALES})"),
    ("subquery reads hid", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model = (SELECT MIN(hid) FROM {SALES})"),
    ("cte", f"WITH x AS (SELECT pid FROM {WS}) SELECT COUNT(DISTINCT pid) FROM x"),
    ("pid filter", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE pid = 42"),
    ("pid range", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE pid < 2"),
    ("or filter", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model = 'aster' OR 1 = 1"),
    ("not filter", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE NOT model = 'aster'"),
    ("like filter", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model LIKE 'a%'"),
    ("timestamp filter", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE session_at = '2026-01-01 10:00:00'"),
    ("measure filter", f"SELECT COUNT(DISTINCT pid) FROM {SALES} WHERE price_eur = '41000'"),
    ("value outside domain", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model = 'tesla'"),
    ("read_csv", "SELECT COUNT(*) FROM read_csv('/etc/passwd')"),
    ("read_parquet", "SELECT COUNT(DISTINCT pid) FROM read_parquet('store/*.parquet')"),
    ("table function in join", f"SELECT COUNT(DISTINCT pid) FROM {WS} JOIN read_csv_auto('/etc/passwd') USING (pid)"),
    ("pragma", "PRAGMA database_list"),
    ("attach", "ATTACH '/tmp/x.db' AS x"),
    ("copy", f"COPY {WS} TO '/tmp/out.csv'"),
    ("install", "INSTALL httpfs"),
    ("set", "SET enable_external_access = true"),
    ("two statements", f"SELECT COUNT(DISTINCT pid) FROM {WS}; SELECT * FROM {WS}"),
    ("comment hides a second statement", f"SELECT COUNT(DISTINCT pid) FROM {WS} /* */; DROP TABLE {WS} --"),
    ("catalog qualifier", f"SELECT COUNT(DISTINCT pid) FROM main.{WS}"),
    ("information schema", "SELECT COUNT(DISTINCT pid) FROM information_schema.tables"),
    ("duckdb catalog function", "SELECT COUNT(*) FROM duckdb_tables()"),
    ("internal table", "SELECT COUNT(DISTINCT pid) FROM persons"),
    ("consent dataset", f"SELECT COUNT(DISTINCT pid) FROM {CONSENT}"),
    ("quoted view name", f'SELECT COUNT(DISTINCT pid) FROM "{WS}" JOIN "persons" USING (pid)'),
    ("upper-case tricks", f"SeLeCt CoUnT(DiStInCt PiD) FrOm {WS.upper()} UnIoN sElEcT 1"),
    ("self join", f"SELECT COUNT(DISTINCT pid) FROM {WS} a JOIN {WS} b USING (pid)"),
    ("join on", f"SELECT COUNT(DISTINCT a.pid) FROM {WS} a JOIN {SALES} b ON a.pid = b.pid"),
    ("left join", f"SELECT COUNT(DISTINCT pid) FROM {WS} LEFT JOIN {SALES} USING (pid)"),
    ("cross join", f"SELECT COUNT(DISTINCT pid) FROM {WS}, {SALES}"),
    ("join on a dimension", f"SELECT COUNT(DISTINCT pid) FROM {WS} JOIN {SALES} USING (model)"),
    ("sum of a dimension", f"SELECT SUM(model) FROM {WS}"),
    ("sum of an expression", f"SELECT SUM(price_eur * 1000) FROM {SALES}"),
    ("sum of private column", f"SELECT SUM(salesperson) FROM {SALES}"),
    ("group by private column", f"SELECT salesperson, COUNT(DISTINCT pid) FROM {SALES} GROUP BY salesperson"),
    ("group by expression", f"SELECT COUNT(DISTINCT pid) FROM {WS} GROUP BY model || region"),
    ("cast smuggling", f"SELECT CAST(pid AS VARCHAR), COUNT(DISTINCT pid) FROM {WS}"),
    ("case expression", f"SELECT SUM(CASE WHEN pid = 1 THEN 1 ELSE 0 END) FROM {WS}"),
    ("string function", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model = chr(97) || 'ster'"),
    ("lambda / list", f"SELECT list(pid) FROM {WS}"),
    ("string_agg", f"SELECT string_agg(CAST(pid AS VARCHAR), ',') FROM {WS}"),
    ("deep parentheses", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE " + "(" * 200 + "model = 'aster'" + ")" * 200),
    ("deep NOT chain", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE " + "NOT " * 300 + "model = 'aster'"),
    ("huge IN list", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model IN (" + ", ".join(["'aster'"] * 3000) + ")"),
    ("huge text", f"SELECT COUNT(DISTINCT pid) FROM {WS} -- " + "x" * 20_000),
    ("empty", ""),
    ("only a comment", "-- nothing"),
    ("null byte", f"SELECT COUNT(DISTINCT pid) FROM {WS}\x00; SELECT * FROM {WS}"),
    ("unicode lookalike", f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model = 'аster'"),
    ("dealer-only view not entitled", f"SELECT COUNT(DISTINCT pid) FROM {CONTRACTS} JOIN {SALES} USING (pid) JOIN nonexistent USING (pid)"),
]
ALLOWED = {"query.sql_rejected", "query.invalid_params", "query.invalid", "policy.dimension_not_allowed", "policy.filter_not_allowed",
           "policy.join_not_approved", "policy.measure_not_allowed", "policy.dataset_not_in_scope"}


@pytest.mark.parametrize(("name", "sql"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_smuggled_sql_is_a_documented_4xx_and_costs_nothing(worlds: dict[bool, World], name: str, sql: str) -> None:
    world = worlds[True]
    before = len(world.charged())
    response = world.query(BRAND, {"sql": sql, "epsilon": 0.5})
    assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert body["code"] in CODES and body["code"] in ALLOWED, body
    check_problem(response, body["code"])
    assert "rows" not in body and "columns" not in body
    assert len(world.charged()) == before, "a refused query must not be charged"


@pytest.mark.parametrize(("name", "sql"), ATTACKS[:20], ids=[a[0] for a in ATTACKS[:20]])
def test_smuggled_sql_is_refused_by_explain_too(worlds: dict[bool, World], name: str, sql: str) -> None:
    world = worlds[True]
    response = world.client.post("/v1/queries/explain", json={"collaboration": "aurora-2026", "sql": sql, "epsilon": 0.5},
                                 headers={"Authorization": f"Bearer {world.analysts[BRAND]}"})
    assert 400 <= response.status_code < 500 and response.json()["code"] in ALLOWED, response.text[:300]
