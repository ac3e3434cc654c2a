"""OpenDP's Polars API on the cohort funnel by model.

``--mode enforced``: the consented rows are loaded into Polars DataFrames (untimed); the timed run
builds the per-person cohort table in Polars, hands it to an OpenDP ``Context`` whose privacy unit
is identified by ``pid``, and ``truncate_per_group(1)`` enforces one row per person before the
noisy counts per (model, stage) over public keys.

``--mode scan``: the timed run is a lazy Polars plan from ``scan_parquet`` over the export to the
per-person table, given to OpenDP as a LazyFrame with ``unit_of(contributions=1)``: OpenDP
**trusts** the declared bound (one row per person) and does not check it.
"""

from __future__ import annotations

import _harness
import cohort
import opendp.prelude as dp
import polars as pl

dp.enable_features("contrib")


def main() -> None:
    a = _harness.args()
    mode = a.mode or "enforced"
    pl.Config.set_streaming_chunk_size(1_000_000)
    keys = pl.DataFrame({"model": [m for m in cohort.MODELS for _ in cohort.STAGES],
                         "stage": [s for _ in cohort.MODELS for s in cohort.STAGES]})
    margin = dp.polars.Margin(by=["model", "stage"], invariant="keys")
    if mode == "scan":
        def scan(t: str) -> pl.LazyFrame:
            return pl.scan_parquet(a.data / f"{t}.parquet")

        def query() -> dict[str, int]:
            persons = cohort.funnel_persons_polars(scan).select("model", "stage")
            ctx = dp.Context.compositor(data=persons, privacy_unit=dp.unit_of(contributions=1),
                                        privacy_loss=dp.loss_of(epsilon=a.epsilon), split_evenly_over=1, margins=[margin])
            out = ctx.query().group_by("model", "stage").agg(dp.len()).with_keys(keys).release().collect()
            return _harness.cells(out.select("model", "stage", "len").rows())

        enforces = False
        exact_frame = lambda: cohort.funnel_persons_polars(scan).collect()  # noqa: E731
    else:
        frames = {t: pl.read_parquet(a.data / f"{t}.parquet") for t in _harness.tables()}

        def lazy(t: str) -> pl.LazyFrame:
            return frames[t].lazy()

        def query() -> dict[str, int]:
            persons = cohort.funnel_persons_polars(lazy).collect()
            ctx = dp.Context.compositor(data=persons.lazy(), privacy_unit=dp.unit_of(contributions=1, identifier=pl.col("pid")),
                                        privacy_loss=dp.loss_of(epsilon=a.epsilon), split_evenly_over=1, margins=[margin])
            out = (ctx.query().truncate_per_group(1).group_by("model", "stage").agg(dp.len()).with_keys(keys).release().collect())
            return _harness.cells(out.select("model", "stage", "len").rows())

        enforces = True
        exact_frame = lambda: cohort.funnel_persons_polars(lazy).collect()  # noqa: E731

    def exact() -> dict[str, int]:
        return _harness.cells(exact_frame().group_by("model", "stage").len().select("model", "stage", "len").rows())

    _harness.run(query, exact, a.reps, enforces=enforces, versions={"opendp": _harness.version("opendp"), "polars": _harness.version("polars")})


if __name__ == "__main__":
    main()
