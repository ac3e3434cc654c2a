"""Render a monthly report and look at it: HTML -> PNG (headless Chromium), PDF pages -> PNG (pdftoppm).

    python3 bench/render_report.py                      # a realistic sample report for the brand
    python3 bench/render_report.py --recipient northside-dealers
    python3 bench/render_report.py report.json          # a Report saved as JSON (Report.model_validate_json)
    python3 bench/render_report.py --out out/ --dump-json sample.json

Why it exists: charts and tables are read by managers; the only honest test of "does it look
right" is to look. The sample numbers follow the shipped policy (aurora-2026): six trailing
cohort months, six models, two dealer groups, three credit models, a suppressed cell here and
there and one partner's upload missing. Every step that needs a tool the machine lacks is
skipped with a message, never failed.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleanroom.reports.model import Freshness, Report, Section
from cleanroom.reports.render import write_report_files

THRESHOLD = 20
MONTHS = ("2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09")  # cohorts whose 30-day window closed by October's end
MODELS = {"aster": 1.0, "borealis": 0.8, "cirrus": 0.55, "dune": 0.42, "ember": 0.3, "fjord": 0.06}
CAMPAIGNS = {"spring_launch": 0.9, "summer_drive": 1.3, "autumn_ev": 1.6, "winter_service": 0.35, "loyalty_upgrade": 0.8,
             "fleet_offer": 0.03, "ev_test_week": 0.95, "brand_always_on": 1.1}  # fmt: skip
CHANNELS = {"search": 1.6, "social": 1.1, "display": 0.5, "email": 0.7, "direct": 1.2, "video": 0.35}
CREDIT_MODELS = ("last_touch", "linear", "position_based")


class Noise:
    """Laplace noise with a known 95 % half-width, like the gateway's released values."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def laplace(self, half_width: float) -> float:
        scale = half_width / math.log(20)  # P(|X| > h) = exp(-h/b) = 5 %
        u = self.rng.random() - 0.5
        return -scale * math.copysign(1, u) * math.log(1 - 2 * abs(u))

    def count(self, true: float, half_width: float) -> tuple[int | None, list[float] | None]:
        noisy = round(true + self.laplace(half_width))
        if noisy < THRESHOLD:
            return None, None
        return noisy, [round(noisy - half_width, 4), round(noisy + half_width, 4)]

    def credit(self, true: float, half_width: float) -> tuple[float | None, list[float] | None]:
        noisy = round(true + self.laplace(half_width), 3)
        if noisy < THRESHOLD:
            return None, None
        return noisy, [round(noisy - half_width, 4), round(noisy + half_width, 4)]


def ratio(num: tuple[Any, Any], den: tuple[Any, Any]) -> tuple[float | None, list[float | None] | None]:
    """num/den (a share) with a conservative interval clipped to [0, 1], like the engine's."""
    (n, n_ci), (d, d_ci) = num, den
    if n is None or d is None or d <= 0:
        return None, None
    low = max(n_ci[0], 0.0) / d_ci[1]
    high = min(n_ci[1] / d_ci[0], 1.0) if d_ci[0] > 0 else 1.0
    return round(n / d, 4), [round(low, 4), round(high, 4)]


def hidden(**values: Any) -> list[str]:
    """The engine's ``suppressed_values``: the measures of a row that are null because suppressed."""
    return [name for name, value in values.items() if value is None]


def funnel_rows(noise: Noise, dims: list[Any], cohort: float, rates: list[float], stages: list[str], hw: float) -> list[list[Any]]:
    """One cohort's rows: persons per stage from a true cohort size and step rates, then noise."""
    true = [cohort]
    for r in rates:
        true.append(true[-1] * r)
    persons = [noise.count(t, hw) for t in true]
    rows = []
    for i, stage in enumerate(stages):
        conv = ratio(persons[i], persons[i - 1]) if i else (None, None)
        cum = ratio(persons[i], persons[0]) if i else (None, None)
        suppressed = persons[i][0] is None
        flags = hidden(persons=persons[i][0], **({"conversion": conv[0], "cumulative_conversion": cum[0]} if i else {}))
        rows.append([*dims, stage, persons[i][0], persons[i][1], conv[0], conv[1], cum[0], cum[1], suppressed, flags])
    return rows


def funnel_section(name: str, title: str, dims: list[str], params: dict[str, Any], rows: list[list[Any]], epsilon: str, qid: str) -> Section:
    columns = [*dims, "stage", "persons", "persons_ci95", "conversion", "conversion_ci95",
               "cumulative_conversion", "cumulative_conversion_ci95", "suppressed", "suppressed_values"]  # fmt: skip
    notes = ["persons: distinct persons at the stage (noisy); conversion: persons / persons at the previous stage in the same cohort.",
             "Intervals are 95% per value; a ratio's interval combines both operands' (joint coverage >= 90%). Suppressed values are null, never 0."]  # fmt: skip
    return Section(name=name, title=title, template="funnel", params=params, dimensions=dims, columns=columns, rows=rows,
                   notes=notes, epsilon=epsilon, query_id=qid)  # fmt: skip


def sample_report(recipient: str = "aurora-motors") -> Report:
    """A realistic report for one recipient (the brand gets everything, a dealer and the finance company less)."""
    noise = Noise(20261101)
    role = {"aurora-motors": "brand", "aurora-financial": "finance"}.get(recipient, "dealer")
    with_financed = role != "dealer"
    stages = ["configurator", "lead", "test_drive", "sale", "financed"][: 5 if with_financed else 4]
    sections: list[Section] = []

    rows: list[list[Any]] = []
    for i, month in enumerate(MONTHS):
        seasonal = [0.92, 1.0, 0.95, 1.04, 1.1, 1.17][i]
        rates = [0.235 + 0.01 * (i == 5), 0.41 - 0.04 * (i == 4), 0.38 - 0.04 * (i == 5), 0.57 + 0.02 * math.sin(i)]
        rows += funnel_rows(noise, [month], 19800 * seasonal, rates[: len(stages) - 1], stages, 31.0)
    sections.append(funnel_section("funnel_by_month", "Funnel by cohort month", ["month"], {"window_days": 30}, rows, "3/10", "q-7f3a9c10"))

    rows = []
    for model, share in MODELS.items():
        rates = [0.24, 0.40 * (0.9 + 0.2 * share), 0.30 + 0.05 * share, 0.52 + 0.08 * share]
        rows += funnel_rows(noise, [model], 7600 * share, rates[: len(stages) - 1], stages, 31.0)
    sections.append(funnel_section("funnel_by_model", "Funnel by model", ["model"], {"window_days": 30}, rows, "3/10", "q-2b81d4e7"))

    rows = []
    groups = {"northside-dealers": 3100, "lakeside-autos": 1900} if role != "dealer" else {recipient: 3100 if recipient == "northside-dealers" else 1900}
    for group, cohort in groups.items():
        rows += funnel_rows(noise, [group], cohort, [0.39 if group == "northside-dealers" else 0.44, 0.36, 0.56][: len(stages) - 2], stages[1:], 31.0)
    sections.append(funnel_section("funnel_by_dealer_group", "Dealer groups compared", ["dealer_group"], {"entry": "lead", "window_days": 30}, rows, "1/5", "q-c4410a2e"))

    if role != "dealer":
        rows = funnel_rows(noise, [], 2480, [0.81, 0.86], ["application", "approved", "contract"], 31.0)
        sections.append(funnel_section("finance_funnel", "Finance applications", [], {"entry": "application", "window_days": 30}, rows, "3/20", "q-0d9e6b31"))

    if role in ("brand", "dealer"):
        for by, weights in (("campaign", CAMPAIGNS), ("channel", CHANNELS)) if role == "brand" else (("campaign", CAMPAIGNS),):
            total = 2150.0
            for k, model in enumerate(CREDIT_MODELS):
                columns = [by, "credited_sales", "credited_sales_ci95", "credited_financed_sales", "credited_financed_sales_ci95",
                           "financed_share", "financed_share_ci95", "suppressed", "suppressed_values"]  # fmt: skip
                rows = []
                spread = sum(weights.values())
                attributed = 0.0
                for j, (name, w) in enumerate(weights.items()):
                    tilt = 1 + 0.18 * math.sin(j * 1.7 + k * 1.3)
                    true = total * 0.86 * w / spread * tilt
                    attributed += true
                    cs = noise.credit(true, 18.0)
                    cf = noise.credit(true * (0.55 + 0.06 * math.cos(j)), 18.0)
                    share = ratio(cf, cs)
                    rows.append([name, cs[0], cs[1], cf[0], cf[1], share[0], share[1], cs[0] is None or cf[0] is None,
                                 hidden(credited_sales=cs[0], credited_financed_sales=cf[0], financed_share=share[0])])
                un = noise.credit(total - attributed, 18.0)
                unf = noise.credit((total - attributed) * 0.5, 18.0)
                us = ratio(unf, un)
                rows.append(["unattributed", un[0], un[1], unf[0], unf[1], us[0], us[1], un[0] is None or unf[0] is None,
                             hidden(credited_sales=un[0], credited_financed_sales=unf[0], financed_share=us[0])])
                ts, tf = noise.count(total, 9.0), noise.count(total * 0.56, 9.0)
                tsh = ratio(tf, ts)
                rows.append(["total", ts[0] and float(ts[0]), ts[1], tf[0] and float(tf[0]), tf[1], tsh[0], tsh[1], ts[0] is None or tf[0] is None,
                             hidden(credited_sales=ts[0], credited_financed_sales=tf[0], financed_share=tsh[0])])
                sections.append(Section(
                    name=f"attribution_{by}_{model}", title=f"{by.capitalize()}s, {model.replace('_', ' ')}", template="attribution",
                    params={"model": model}, dimensions=[by], columns=columns, rows=rows, epsilon="3/20" if by == "campaign" else "1/10",
                    query_id=f"q-{by[:2]}{k}e41b{len(rows):02d}", notes=["credited_sales: sales credited to each value (fractional credit in sales units, noisy)."],
                ))  # fmt: skip

    if role != "dealer":
        rows = []
        for product, (ending, back) in {"loan": (1240, 0.34), "lease": (860, 0.52), "balloon": (64, 0.25)}.items():
            e, s = noise.count(ending, 14.0), noise.count(ending * back, 14.0)
            rate = ratio(s, e)
            rows.append([product, e[0], e[1], s[0], s[1], rate[0], rate[1], e[0] is None or s[0] is None,
                         hidden(contracts_ending=e[0], seen_again=s[0], seen_again_rate=rate[0])])
        sections.append(Section(
            name="contracts_ending_by_product", title="Contracts ending next quarter", template="lifecycle",
            params={}, dimensions=["product"], columns=["product", "contracts_ending", "contracts_ending_ci95", "seen_again",
                                                        "seen_again_ci95", "seen_again_rate", "seen_again_rate_ci95", "suppressed",
                                                        "suppressed_values"],
            rows=rows, epsilon="3/10", query_id="q-5be21f08",
        ))  # fmt: skip

    withheld = [] if role == "brand" else [
        *(f"attribution_{by}_{m}" for by in (("campaign", "channel") if role == "finance" else ("channel",)) for m in CREDIT_MODELS),
        *(["finance_funnel", "contracts_ending_by_product"] if role == "dealer" else []),
    ]  # fmt: skip
    at = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
    freshness = [
        Freshness(partner="aurora-motors", dataset="web_sessions", version=14, uploaded_at=datetime(2026, 11, 1, 2, 10, tzinfo=UTC), status="ok"),
        Freshness(partner="aurora-motors", dataset="campaign_touches", version=14, uploaded_at=datetime(2026, 11, 1, 2, 14, tzinfo=UTC), status="ok"),
        Freshness(partner="northside-dealers", dataset="leads", version=12, uploaded_at=datetime(2026, 11, 1, 4, 2, tzinfo=UTC), status="ok"),
        Freshness(partner="northside-dealers", dataset="sales", version=12, uploaded_at=datetime(2026, 11, 1, 4, 3, tzinfo=UTC), status="ok"),
        Freshness(partner="lakeside-autos", dataset="leads", version=11, uploaded_at=datetime(2026, 10, 31, 22, 40, tzinfo=UTC), status="ok"),
        Freshness(partner="lakeside-autos", dataset="sales", version=None, uploaded_at=None, status="missing", detail="no upload for 2026-10"),
        Freshness(partner="aurora-financial", dataset="applications", version=9, uploaded_at=datetime(2026, 11, 1, 5, 0, tzinfo=UTC), status="ok"),
        Freshness(partner="aurora-financial", dataset="contracts", version=8, uploaded_at=datetime(2026, 9, 30, 23, 0, tzinfo=UTC), status="stale",
                  detail="last upload covers September 2026"),
    ]  # fmt: skip
    return Report(
        collaboration="aurora-2026", month="2026-10", recipient=recipient, recipient_role=role, generated_at=at,
        policy_hash="sha256:9c1e4f0b7d2a63e8a5b1c0f4e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0", sections=sections,
        freshness=freshness, withheld=withheld,
        missing=["Lakeside Autos sales for October 2026 were not uploaded: their October sales and financed sales are not counted."],
    )  # fmt: skip


def screenshot_html(html: Path, out: Path) -> Path | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("skip: no chromium or chromium-browser on PATH (apt-get install chromium)")
        return None
    png = out / "report-html.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={png}",
           "--window-size=1280,4000", html.resolve().as_uri()]  # fmt: skip
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    if not png.exists():
        print("skip: chromium did not write a screenshot")
        return None
    return png


def pdf_pages(pdf: Path, out: Path) -> list[Path]:
    if shutil.which("pdftoppm") is None:
        print("skip: no pdftoppm on PATH (apt-get install poppler-utils)")
        return []
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(out / "report-pdf")], check=True, timeout=120)
    return sorted(out.glob("report-pdf-*.png"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", type=Path, help="a Report as JSON (default: the built-in sample)")
    parser.add_argument("--out", type=Path, default=Path("report-out"), help="output directory (emptied first)")
    parser.add_argument("--recipient", default="aurora-motors", help="sample recipient: aurora-motors, northside-dealers, aurora-financial")
    parser.add_argument("--dump-json", type=Path, help="also write the sample Report as JSON here")
    args = parser.parse_args(argv)

    report = Report.model_validate_json(args.report.read_text(encoding="utf-8")) if args.report else sample_report(args.recipient)
    if args.dump_json:
        args.dump_json.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    files = args.out / "files"
    if args.out.exists():
        shutil.rmtree(args.out)
    files.mkdir(parents=True)
    for name, digest in write_report_files(report, files).items():
        print(f"{files / name}  sha256 {digest[:16]}…  {(files / name).stat().st_size:,} bytes")
    shot = screenshot_html(files / "report.html", args.out)
    if shot:
        print(f"HTML screenshot: {shot}")
    for page in pdf_pages(files / "report.pdf", args.out):
        print(f"PDF page: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
