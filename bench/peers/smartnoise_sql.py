"""SmartNoise SQL on the cohort funnel by model, over DuckDB or over pandas.

SmartNoise SQL answers single-table aggregates, so the cohort (joins across the brand's, the
dealers' and the finance company's tables) is computed by the host engine inside the timed run:
``--mode duckdb``: a DuckDB view ``funnel.persons`` (the hand-written cohort SQL over in-memory
tables loaded from the export) that SmartNoise queries through the connection (PostgreSQL dialect);
``--mode pandas``: the cohort built with pandas, handed to ``snsql.from_df``. The metadata declares
``pid`` the private id with ``max_ids: 1`` and ``sample_max_ids: true``, so SmartNoise **enforces**
one row per person (reservoir sampling) before the noisy ``COUNT(*)`` per (model, stage); groups
below its tau threshold are dropped (``censor_dims``), which needs a delta.
"""

from __future__ import annotations

import warnings

import _harness
import cohort

warnings.filterwarnings("ignore")

META = {
    "": {
        "funnel": {
            "persons": {
                "max_ids": 1, "row_privacy": False, "sample_max_ids": True, "censor_dims": True,
                "pid": {"type": "int", "private_id": True},
                "model": {"type": "string"},
                "stage": {"type": "string"},
            }
        }
    }
}
QUERY = "SELECT model, stage, COUNT(*) AS n FROM funnel.persons GROUP BY model, stage"


def main() -> None:
    import snsql
    from snsql import Privacy

    a = _harness.args()
    privacy = Privacy(epsilon=a.epsilon, delta=1e-6)
    if a.mode == "pandas":
        import pandas as pd

        frames = {t: pd.read_parquet(a.data / f"{t}.parquet") for t in _harness.tables()}

        def persons() -> "pd.DataFrame":
            return cohort.funnel_persons_pandas(lambda t: frames[t])

        def query() -> dict[str, int]:
            reader = snsql.from_df(persons(), privacy=privacy, metadata=META)
            return _rows(reader.execute(QUERY))

        def exact() -> dict[str, int]:
            return _harness.cells(persons().groupby(["model", "stage"]).size().reset_index().itertuples(index=False))

        versions = {"smartnoise-sql": _harness.version("smartnoise-sql"), "pandas": _harness.version("pandas")}
    else:
        import duckdb

        con = duckdb.connect(":memory:", config={"threads": a.threads, "memory_limit": "2GB"})
        for t in _harness.tables():
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{a.data / f'{t}.parquet'}')")
        con.execute("CREATE SCHEMA funnel")
        con.execute(f"CREATE VIEW funnel.persons AS {cohort.funnel_persons_sql(True)}")
        reader = snsql.from_connection(_DuckDBAdapter(con), engine="postgres", privacy=privacy, metadata=META)

        def query() -> dict[str, int]:
            return _rows(reader.execute(QUERY))

        def exact() -> dict[str, int]:
            return _harness.cells(con.execute("SELECT model, stage, count(*) FROM funnel.persons GROUP BY ALL").fetchall())

        versions = {"smartnoise-sql": _harness.version("smartnoise-sql"), "duckdb": _harness.version("duckdb")}
    _harness.run(query, exact, a.reps, enforces=True, versions=versions)


class _DuckDBAdapter:
    """DuckDB behind SmartNoise's PostgreSQL reader, with one rewrite.

    DuckDB refuses a volatile ``ORDER BY RANDOM()`` inside a window, which is how SmartNoise
    samples ``max_ids`` rows per person; the adapter orders by ``hash(pid, salt)`` with a fresh
    random salt per statement instead (a uniformly shuffled order per query, as intended).
    """

    def __init__(self, con):  # type: ignore[no-untyped-def]
        self.con = con

    def cursor(self):  # type: ignore[no-untyped-def]
        return self

    def execute(self, sql: str, *args):  # type: ignore[no-untyped-def]
        import secrets

        sql = sql.replace("ORDER BY RANDOM ( )", f"ORDER BY hash(pid, {secrets.randbits(62)})")
        self._result = self.con.execute(sql, *args)
        return self

    def fetchall(self):  # type: ignore[no-untyped-def]
        return self._result.fetchall()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._result.fetchall())

    @property
    def description(self):  # type: ignore[no-untyped-def]
        return self._result.description

    def rollback(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


def _rows(result: list) -> dict[str, int]:  # type: ignore[type-arg]
    """snsql returns a header row then (model, stage, n) tuples."""
    return _harness.cells(tuple(r) for r in result[1:])


if __name__ == "__main__":
    main()
