"""Qrlew (pyqrlew) on DuckDB, on the cohort funnel by model.

Qrlew rewrites a SQL query into a differentially private one and leaves the execution to a
database. The cohort (joins across partners) is a DuckDB view ``persons`` over in-memory tables
loaded from the export; Qrlew gets that table's public schema (``pid`` integer, ``model`` and
``stage`` with their public values, and its row count, described through an empty SQLite schema because its own
database reflection does not speak DuckDB) and rewrites ``SELECT model, stage, COUNT(*) ... GROUP
BY model, stage`` with ``pid`` as the privacy unit and ``max_multiplicity=1``. The rewritten SQL
**enforces** the bound (it aggregates per privacy unit and clips) and adds the noise in SQL.
Timed: the rewrite and the rewritten statement on DuckDB (which computes the cohort view).
"""

from __future__ import annotations

import warnings

import _harness
import cohort

warnings.filterwarnings("ignore")
QUERY = "SELECT model, stage, COUNT(*) AS n FROM persons GROUP BY model, stage"


def main() -> None:
    import duckdb
    import pyqrlew as qrl
    import sqlalchemy as sa

    a = _harness.args()
    con = duckdb.connect(":memory:", config={"threads": a.threads, "memory_limit": "2GB"})
    for t in _harness.tables():
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{a.data / f'{t}.parquet'}')")
    con.execute(f"CREATE VIEW persons AS {cohort.funnel_persons_sql(True)}")
    schema = sa.create_engine("sqlite://")
    with schema.connect() as c:
        c.exec_driver_sql("CREATE TABLE persons (pid INTEGER, model TEXT, stage TEXT)")
        # Qrlew reads the table size from this schema and clips each count to it: declare the real size
        size = con.execute("SELECT count(*) FROM persons").fetchone()[0]
        c.exec_driver_sql(f"INSERT INTO persons WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {size}) "
                          "SELECT i, 'aster', 'lead' FROM r")
        c.commit()
    dataset = (qrl.Dataset.from_database("bench", schema, None, ranges=False, possible_values_threshold=None)
               .with_possible_values(None, "persons", "model", list(cohort.MODELS))
               .with_possible_values(None, "persons", "stage", list(cohort.STAGES)))

    def query() -> dict[str, int]:
        relation = dataset.relation(QUERY)
        private = relation.rewrite_with_differential_privacy(dataset, [("persons", [], "pid")], {"epsilon": a.epsilon, "delta": 1e-6},
                                                             max_multiplicity=1)
        return _harness.cells(con.execute(private.relation().to_query()).fetchall())

    def exact() -> dict[str, int]:
        return _harness.cells(con.execute("SELECT model, stage, count(*) FROM persons GROUP BY ALL").fetchall())

    _harness.run(query, exact, a.reps, enforces=True, versions={"pyqrlew": _harness.version("pyqrlew"), "duckdb": _harness.version("duckdb")})


if __name__ == "__main__":
    main()
