"""Rendering a monthly report: the four files agree, hide nothing they must show, and are stable.

The HTML marks every cell that prints a released number with the measure's key (``data-key``),
so the checks below compare the page with results.csv cell by cell, not by searching the text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zlib
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _reports_data import MISSING, brand_report, dealer_report

from cleanroom.reports.html import render_html
from cleanroom.reports.model import Report
from cleanroom.reports.noise import Change
from cleanroom.reports.outline import build_document
from cleanroom.reports.pdf import latin1, render_pdf
from cleanroom.reports.render import FILES, write_report_files
from cleanroom.reports.model import Section
from cleanroom.reports.results import CSV_COLUMNS, Results, pretty, rounded, section_measures


class Cells(HTMLParser):
    """Collects the text of every element with a data-key, and the text of the summary section."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, list[str]] = {}
        self.summary = ""
        self._open: list[tuple[str, str | None, list[str]]] = []
        self._in_summary = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("id") == "summary":
            self._in_summary = 1
        elif self._in_summary and tag == "section":
            self._in_summary += 1
        self._open.append((tag, found.get("data-key"), []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, key, parts = self._open.pop()
            if key is not None:
                self.cells.setdefault(key, []).append(" ".join("".join(parts).split()))
            if self._open:
                self._open[-1][2].extend(parts)
            if open_tag == tag:
                break
        if tag == "section" and self._in_summary:
            self._in_summary -= 1

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)
        if self._in_summary:
            self.summary += data


def _digits(text: str) -> str:
    """Thousands separators removed ('1,234.5' -> '1234.5'): the one way HTML and CSV may differ."""
    return re.sub(r"(?<=\d),(?=\d{3})", "", text)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    directory = tmp_path_factory.mktemp("report")
    return directory, write_report_files(brand_report(), directory)


@pytest.fixture(scope="module")
def csv_rows(written: tuple[Path, dict[str, str]]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((written[0] / "results.csv").read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def page(written: tuple[Path, dict[str, str]]) -> Cells:
    parser = Cells()
    parser.feed((written[0] / "report.html").read_text(encoding="utf-8"))
    return parser


def _pdf_texts(data: bytes) -> list[str]:
    """The decompressed content streams of a PDF, in file order (page 1 first for fpdf2)."""
    texts = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            texts.append(zlib.decompress(match.group(1)).decode("latin-1"))
        except zlib.error:
            texts.append(match.group(1).decode("latin-1"))
    return texts


def test_returns_the_four_files_with_their_hashes(written: tuple[Path, dict[str, str]]) -> None:
    directory, hashes = written
    assert sorted(hashes) == sorted(FILES) == sorted(p.name for p in directory.iterdir())
    for name, digest in hashes.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest


def test_same_report_gives_identical_files(tmp_path: Path, written: tuple[Path, dict[str, str]]) -> None:
    again = tmp_path / "again"
    again.mkdir()
    assert write_report_files(brand_report(), again) == written[1]


def test_csv_and_parquet_hold_the_same_long_table(written: tuple[Path, dict[str, str]], csv_rows: list[dict[str, str]]) -> None:
    table = pq.read_table(written[0] / "results.parquet").to_pylist()
    assert list(csv_rows[0]) == list(CSV_COLUMNS)
    assert len(table) == len(csv_rows) > 100
    for row, pq_row in zip(csv_rows, table, strict=True):
        assert row["row_key"] == pq_row["row_key"] and row["measure"] == pq_row["measure"]
        for column in ("value", "ci95_low", "ci95_high"):
            assert (pq_row[column] is None) == (row[column] == "")
            if row[column]:
                assert Decimal(row[column]) == Decimal(repr(pq_row[column]))
    keys = {(r["section"], r["row_key"], r["measure"]) for r in csv_rows}
    assert len(keys) == len(csv_rows)
    assert ("funnel_by_month", "month=2026-08|stage=lead", "persons") in keys


def test_display_rule(csv_rows: list[dict[str, str]]) -> None:
    """Persons as integers, credited sales with 1 decimal, rates as percent with 1 decimal."""
    assert rounded(0.0923, "percent") == Decimal("9.2") and rounded(0.0925, "percent") == Decimal("9.3")
    assert rounded(234.46, "sales") == Decimal("234.5") and rounded(1242.5, "persons") == Decimal("1243")
    assert rounded(-0.0001, "percent") == Decimal("0.0") and str(rounded(-0.2, "persons")) == "0"
    assert pretty("12345.6") == "12,345.6" and pretty("-1234") == "-1,234" and pretty("") == ""
    units = {r["measure"]: r["unit"] for r in csv_rows}
    assert units["persons"] == "persons" and units["credited_sales"] == "sales" and units["conversion"] == "percent"
    lead = next(r for r in csv_rows if r["row_key"] == "month=2026-09|stage=lead" and r["measure"] == "conversion")
    assert lead["value"] == "24.6"  # 5683 / 23137 = 0.2456...
    for r in csv_rows:
        if r["value"] and r["unit"] == "persons":
            assert re.fullmatch(r"-?\d+", r["value"]), r
        elif r["value"]:
            assert re.fullmatch(r"-?\d+\.\d", r["value"]), r


def test_every_csv_number_is_printed_in_its_html_cell(csv_rows: list[dict[str, str]], page: Cells) -> None:
    checked = 0
    for r in csv_rows:
        key = f"{r['section']}|{r['row_key']}|{r['measure']}"
        texts = page.cells.get(key)
        assert texts, f"no HTML cell for {key}"
        for text in texts:
            plain = _digits(text)
            if r["suppressed"] == "true":
                continue
            if not r["value"]:
                assert plain.startswith("n/a"), (key, text)
                continue
            numbers = re.findall(r"-?\d+(?:\.\d+)?", plain)
            assert numbers[0] == r["value"], (key, text)
            bounds = [b for b in (r["ci95_low"], r["ci95_high"]) if b]
            assert numbers[1 : 1 + len(bounds)] == bounds, (key, text)
            checked += 1
    assert checked > 100


def test_suppressed_cells_print_no_number(csv_rows: list[dict[str, str]], page: Cells) -> None:
    suppressed = [r for r in csv_rows if r["suppressed"] == "true"]
    assert len(suppressed) >= 8  # fjord's sale and financed, fleet_offer, balloon's seen again ...
    for r in suppressed:
        assert r["value"] == r["ci95_low"] == r["ci95_high"] == ""
        for text in page.cells[f"{r['section']}|{r['row_key']}|{r['measure']}"]:
            assert text == "suppressed", text
            assert not re.search(r"\d", text)


def test_null_that_is_not_suppressed_says_why(csv_rows: list[dict[str, str]], page: Cells) -> None:
    cohort = next(r for r in csv_rows if r["row_key"] == "model=aster|stage=configurator" and r["measure"] == "conversion")
    assert cohort["suppressed"] == "false" and cohort["value"] == "" and cohort["note"] == "cohort"
    assert page.cells["funnel_by_model|model=aster|stage=configurator|conversion"] == ["n/a (cohort)"]


def test_html_is_self_contained(written: tuple[Path, dict[str, str]]) -> None:
    html = (written[0] / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "@import", "<script", "<link", "<img", "src=", "//fonts"):
        assert forbidden not in html.lower(), forbidden
    assert re.findall(r"url\((?!#)", html) == []  # only references to ids inside the page
    assert html.count("<svg") >= 4
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "inline SVGs must not share ids"


def test_names_are_escaped() -> None:
    report = brand_report(recipient="<b>evil</b> & co", missing=["<script>alert(1)</script>"])
    html = render_html(build_document(report, Results(report)))
    assert "<script>" not in html and "<b>evil</b>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt; &amp; co" in html


def test_missing_is_on_page_one(page: Cells, written: tuple[Path, dict[str, str]]) -> None:
    assert "Missing from this report" in page.summary and MISSING in page.summary
    first_page = next(t for t in _pdf_texts((written[0] / "report.pdf").read_bytes()) if " Tj" in t or "TJ" in t)
    assert "Missing from this report" in first_page and "lakeside-autos sales for 2026-10" in first_page


def test_page_one_has_kpis_movers_and_the_noise_rule(page: Cells) -> None:
    text = " ".join(page.summary.split())
    assert "Cohort size" in text and "23,137" in text and "(23,106–23,168)" in text
    assert "Financed share of sales" in text and "55.4%" in text
    assert "What moved most: September 2026 cohort against August 2026" in text
    assert "latest whose window had closed by the end of October 2026" in text
    assert "1.96 × √(sd₁² + sd₂²)" in text
    assert text.count("Larger than the noise") + text.count("Within the noise") + text.count("Cannot be judged") == 3
    assert "deliberately blurred" in text and "95 times out of 100" in text and "too few people" in text
    assert "aurora-financial contracts is stale" in text


def test_pdf_is_a4_and_names_the_recipient(written: tuple[Path, dict[str, str]]) -> None:
    data = (written[0] / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"/MediaBox [0 0 595.28 841.89]" in data
    assert any("aurora-motors" in t for t in _pdf_texts(data))


def test_pdf_survives_any_name() -> None:
    report = brand_report(recipient="Autohaus Łódź – Süd ε≥1 漢字", missing=["Ünïcödé → everywhere…"])
    data = render_pdf(build_document(report, Results(report)), report.generated_at, compress=False)
    assert data.startswith(b"%PDF-") and b"Autohaus L\xf3dz - S\xfcd epsilon>=1 ??" in data
    assert latin1("1,180–1,290 ≥ ε") == "1,180-1,290 >= epsilon"


def test_dealer_copy_without_financed_stage_or_attribution(tmp_path: Path) -> None:
    report = dealer_report()
    hashes = write_report_files(report, tmp_path)
    assert set(hashes) == set(FILES)
    parser = Cells()
    parser.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    text = " ".join(parser.summary.split())
    assert "Financed share of sales not in this report" in text
    assert "Missing from this report" not in text
    assert "attribution_campaign_last_touch" in text  # withheld, said so
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Attribution: campaigns and channels" not in html and "Captive finance" not in html


def test_report_without_monthly_funnel_still_renders(tmp_path: Path) -> None:
    report: Report = brand_report()
    report = report.model_copy(update={"sections": [s for s in report.sections if s.name != "funnel_by_month"]})
    write_report_files(report, tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "no funnel by month" in html


def test_noise_rule() -> None:
    """|b - a| > 1.96 * sqrt(sd_a^2 + sd_b^2), sd = half-width / 1.96."""
    report = brand_report()
    results = Results(report)
    get = results.get
    # 4839 -> 5114 leads, each ± 31: sd = 31/1.96, threshold 1.96*sqrt(2)*31/1.96 = 43.8 < 275
    assert Change(get("funnel_by_month", "month=2026-07|stage=lead", "persons"), get("funnel_by_month", "month=2026-08|stage=lead", "persons")).beyond_noise  # type: ignore[arg-type]
    # 618 -> 605 buyers: 13 < 43.8
    sale = Change(get("funnel_by_month", "month=2026-08|stage=sale", "persons"), get("funnel_by_month", "month=2026-09|stage=sale", "persons"))  # type: ignore[arg-type]
    assert sale.beyond_noise is False and sale.text == "-2.1%"


def test_suppression_is_per_measure() -> None:
    """The engine's ``suppressed_values`` decides; without it, a null in a suppressed row."""
    columns = ["stage", "persons", "persons_ci95", "conversion", "conversion_ci95", "suppressed", "suppressed_values"]
    rows = [
        ["lead", 120, [110.0, 130.0], None, None, False, []],  # the cohort: n/a, not suppressed
        ["sale", 25, [15.0, 35.0], 0.2083, [0.12, 0.31], False, ["conversion"]],  # listed: never printed
        ["financed", None, None, None, None, True, ["persons", "conversion"]],
    ]
    section = Section(name="f", title="f", template="funnel", params={}, dimensions=[], columns=columns, rows=rows,
                      epsilon="1/10", query_id="q")
    got = {(m.row_key, m.measure): m for m in section_measures(section)}
    assert [k for k in got if k[0].startswith("stage=lead")] == [("stage=lead", "persons"), ("stage=lead", "conversion")]
    assert not got["stage=lead", "conversion"].suppressed and got["stage=lead", "conversion"].note == "cohort"
    sale = got["stage=sale", "conversion"]
    assert sale.suppressed and sale.value is None and sale.low is None and sale.text == "suppressed"
    assert got["stage=sale", "persons"].text == "25 (15–35)"
    assert got["stage=financed", "persons"].suppressed
    old_shape = section.model_copy(update={"columns": columns[:-1], "rows": [r[:-1] for r in rows]})
    got = {(m.row_key, m.measure): m for m in section_measures(old_shape)}
    assert got["stage=sale", "conversion"].text == "20.8% (12.0–31.0)" and got["stage=financed", "conversion"].suppressed
