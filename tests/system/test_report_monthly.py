"""The monthly report job end to end: a real gateway, real report keys, the real CLI and renderer.

One collaboration (the shipped policy, 4,000 synthetic customers) and one gateway are shared by
most tests; every run of the job is a module fixture, so the expensive part (releasing eleven
sections, rendering four recipients) happens once per question asked of it:

- ``first_run``: the report of the data's last month (the policy's last month, 2026-10: complete
  by the real clock), generated at ``T1``. Before it, the month's analyst budgets were spent to
  the reservation (``october_spent``): the report must still get its full 2.0.
- ``rerun``: the same month again into the same directory, generated at ``T2``: nothing charged,
  files identical but for the generated time.
- ``interrupted``: two runs whose renderer fails on the second recipient (one over the complete
  report, one into an empty directory): no partial report, no leftover staging directory, and
  the recipient rendered before the failure (at ``T1``) is byte-identical to the first run's.

Two small variants are built for missing data: one where a partner never uploaded a dataset
(``missing``) and one where its upload has no rows (``empty``). Nothing of ours is mocked; the only
injected fault is the renderer raising on purpose.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from _live_helpers import LiveGateway, bearer, check_problem
from collab import (
    COLLABORATION,
    Collab,
    _keys,
    _layout,
    _prepare_one,
    _raw_data,
    _sign_and_activate,
    _write_policy,
    build_collab,
    free_port,
    serve,
)
from typer.testing import CliRunner

import cleanroom.reports.render as render
from cleanroom.budget import Epsilon
from cleanroom.client import Client
from cleanroom.cli.main import app
from cleanroom.errors import BudgetError
from cleanroom.gateway import ApiKeys
from cleanroom.gateway.release import REPORT_ACCOUNT, budget_limits
from cleanroom.ingest import ingest_upload
from cleanroom.policy import active_policy, content_hash
from cleanroom.reports.job import RunResult, run_monthly
from cleanroom.reports.months import is_complete
from cleanroom.store import Store

BRAND, NORTH, LAKE, FINANCE = "aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial"
FILES = {"report.html", "report.pdf", "results.csv", "results.parquet", "manifest.json"}
T1 = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)  # never the minute of an upload shown in the freshness table
T2 = T1 + timedelta(days=1, hours=1, minutes=1)  # a different date and a different time of day
MODELS = ["aster", "borealis", "cirrus", "dune", "ember", "fjord"]


def shown(moment: datetime) -> str:
    """How the HTML and PDF print the generated time."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# --- the shipped policy, read as data (what the report must follow) ------------------------------


def policy_data(collab: Collab) -> dict[str, Any]:
    return dict(yaml.safe_load(collab.policy_path.read_text()))


def report_month(collab: Collab) -> str:
    """The last month of the policy's month domain: where the synthetic data ends (2026-10)."""
    month = str(policy_data(collab)["dimensions"]["month"]["domain"]["to"])
    assert is_complete(month), f"{month} must be over (UTC) for this test"
    return month


def sections_for(collab: Collab) -> dict[str, list[str]]:
    """Recipient -> the names of the sections the policy sends it, in policy order."""
    report = policy_data(collab)["report"]
    out: dict[str, list[str]] = {r: [] for r in report["recipients"]}
    for s in report["sections"]:
        for r in s.get("recipients") or report["recipients"]:
            out[r].append(s["name"])
    return out


def section_epsilons(collab: Collab) -> dict[str, Decimal]:
    return {s["name"]: Decimal(str(s["epsilon"])) for s in policy_data(collab)["report"]["sections"]}


# --- files ---------------------------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` by relative path (to compare runs after the disk has changed)."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def pdf_streams(data: bytes) -> list[bytes]:
    """The PDF's content and image streams, inflated (fpdf2 compresses them)."""
    out = []
    for m in re.finditer(rb"/Length (\d+)\s*>>\s*stream\r?\n", data):
        raw = data[m.end():m.end() + int(m.group(1))]
        compressed = b"/FlateDecode" in data[data.rfind(b"obj", 0, m.start()):m.start()]
        out.append(zlib.decompress(raw) if compressed else raw)
    assert out, "no stream in the PDF"
    return out


def cells(page: str) -> dict[str, list[str]]:
    """Text of every table cell that prints a released measure, by its ``data-key``."""
    found: dict[str, list[str]] = {}
    for key, inner in re.findall(r'<td[^>]*\sdata-key="([^"]*)"[^>]*>(.*?)</td>', page, flags=re.DOTALL):
        text = html.unescape(re.sub(r"<[^>]+>", "", inner))
        found.setdefault(html.unescape(key), []).append(" ".join(text.split()))
    return found


def with_separators(number: str) -> str:
    """'12345.6' -> '12,345.6' (how people read a number in the HTML)."""
    sign, body = ("-", number[1:]) if number.startswith("-") else ("", number)
    whole, dot, frac = body.partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


# --- the CLI -------------------------------------------------------------------------------------


def cli(out: Path, month: str, gateway: str, key: str, *extra: str) -> Any:
    args = ["report", "monthly", "--collaboration", COLLABORATION, "--month", month, "--out", str(out), "--gateway", gateway, *extra]
    return CliRunner().invoke(app, args, env={"CLEANROOM_API_KEY": key})


def cli_error(result: Any) -> dict[str, Any]:
    """The error event the job logs on stderr (one JSON line per event off a terminal)."""
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    errors = [e for e in events if e.get("event") == "error"]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- the shared collaboration and its runs --------------------------------------------------------


@dataclass(frozen=True)
class Built:
    collab: Collab
    started: datetime
    finished: datetime


@dataclass(frozen=True)
class Run:
    out: Path
    result: RunResult
    files: dict[str, bytes]  # "<recipient>/<file>" -> bytes, right after the run
    charges: list[dict[str, Any]]  # the ledger's charges for the month, right after the run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Built:
    started = datetime.now(UTC)
    collab = build_collab(tmp_path_factory.mktemp("report") / "collab", repo, raw_source=synth_4k)
    return Built(collab, started, datetime.now(UTC))


@pytest.fixture(scope="module")
def collab(built: Built) -> Collab:
    return built.collab


@pytest.fixture(scope="module")
def month(collab: Collab) -> str:
    return report_month(collab)


@pytest.fixture(scope="module")
def gateway(collab: Collab) -> Iterator[LiveGateway]:
    with serve(collab.config()) as live:
        yield live


@pytest.fixture(scope="module")
def report_key(collab: Collab, gateway: LiveGateway) -> str:
    return collab.mint(BRAND, "report")


@dataclass(frozen=True)
class Spent:
    per_partner: dict[str, Decimal]
    refused: int


@pytest.fixture(scope="module")
def october_spent(collab: Collab, month: str) -> Spent:
    """The analysts' month, before its report: every partner charged 1.0 at a time until the ledger
    refuses, with the limits the gateway charges queries under (``budget_limits`` of the active
    policy). The gateway charges a query to the current month, so the report's month is filled
    through the same ledger call the gateway makes."""
    policy = active_policy(COLLABORATION, collab.policies, collab.store, collab.partners())
    ledger = collab.ledger()
    spent = {p: Decimal(0) for p in sorted(collab.partners())}
    refused = 0
    for round_ in range(12):
        for partner in spent:
            try:
                ledger.charge(collaboration=COLLABORATION, partner=partner, month=month, epsilon=Epsilon.parse("1.0"), **budget_limits(policy),
                              purpose="query", query_id=f"q_seed{round_:02d}{partner[:4]}", actor=f"{partner}/analyst")
            except BudgetError as exc:
                assert exc.code == "budget.exhausted"
                refused += 1
            else:
                spent[partner] += 1
    return Spent(spent, refused)


def _run(gateway: LiveGateway, key: str, month: str, out: Path, now: datetime, collab: Collab, **kwargs: Any) -> Run:
    with Client(gateway.url, key, timeout=600) as client:
        result = run_monthly(client, COLLABORATION, month, out, now=lambda: now, **kwargs)
    return Run(out=out, result=result, files=snapshot(result.directory), charges=collab.ledger().charges(COLLABORATION, month))


@pytest.fixture(scope="module")
def first_run(collab: Collab, october_spent: Spent, gateway: LiveGateway, report_key: str, month: str,
              tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(gateway, report_key, month, tmp_path_factory.mktemp("out"), T1, collab)


@pytest.fixture(scope="module")
def rerun(collab: Collab, first_run: Run, gateway: LiveGateway, report_key: str, month: str) -> Run:
    """The same month again, into the same directory, an hour and a day later."""
    return _run(gateway, report_key, month, first_run.out, T2, collab)


@dataclass(frozen=True)
class Interrupted:
    out: Path
    before: dict[str, bytes]  # the month's files before the failed run ({} when there were none)
    after: dict[str, bytes]
    listing: list[str]  # out/<collaboration>/ after the failed run, hidden entries included
    staging: list[Path]  # where the renderer was asked to write
    captured: dict[str, bytes]  # the first recipient's folder as it stood when the second one failed
    charges_before: list[dict[str, Any]]
    charges_after: list[dict[str, Any]]


def _interrupted(collab: Collab, gateway: LiveGateway, key: str, month: str, out: Path, capture: Path) -> Interrupted:
    """A run whose renderer raises on the second recipient (a full disk, a renderer bug)."""
    final = out / COLLABORATION / month
    before = snapshot(final) if final.exists() else {}
    charges_before = collab.ledger().charges(COLLABORATION, month)
    real = render.write_report_files
    calls: list[Path] = []

    def failing(report: Any, directory: Path) -> dict[str, str]:
        calls.append(directory)
        if len(calls) == 2:
            assert calls[0].is_dir() and (calls[0] / "manifest.json").is_file()  # the first recipient was complete
            shutil.copytree(calls[0], capture)
            raise OSError(28, "No space left on device (injected by the test)")
        return real(report, directory)

    with pytest.MonkeyPatch.context() as patch, Client(gateway.url, key, timeout=600) as client:
        patch.setattr(render, "write_report_files", failing)
        with pytest.raises(OSError, match="injected by the test"):
            run_monthly(client, COLLABORATION, month, out, now=lambda: T1)
    assert len(calls) == 2
    parent = out / COLLABORATION
    return Interrupted(out=out, before=before, after=snapshot(final) if final.exists() else {},
                       listing=sorted(p.name for p in parent.iterdir()) if parent.exists() else [], staging=calls,
                       captured=snapshot(capture), charges_before=charges_before, charges_after=collab.ledger().charges(COLLABORATION, month))


@pytest.fixture(scope="module")
def interrupted(collab: Collab, first_run: Run, gateway: LiveGateway, report_key: str, month: str,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, Interrupted]:
    tmp = tmp_path_factory.mktemp("interrupted")
    return {
        "over_complete": _interrupted(collab, gateway, report_key, month, first_run.out, tmp / "capture-1"),
        "into_empty": _interrupted(collab, gateway, report_key, month, tmp / "out", tmp / "capture-2"),
    }


def report_charges(charges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in charges if c["partner"] == REPORT_ACCOUNT]


def total(charges: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(c["epsilon"]) for c in charges), start=Decimal(0))


# --- 1. the files of a run ------------------------------------------------------------------------


def test_run_writes_every_recipients_files_with_a_verifiable_manifest(built: Built, first_run: Run, month: str) -> None:
    collab = built.collab
    wanted = sections_for(collab)
    eps = section_epsilons(collab)
    directory = first_run.out / COLLABORATION / month
    assert first_run.result.directory == directory
    assert sorted(p.name for p in directory.iterdir()) == sorted(wanted)
    policy = active_policy(COLLABORATION, collab.policies, collab.store, collab.partners())
    released = {c["query_id"] for c in report_charges(first_run.charges)}
    for recipient, names in wanted.items():
        folder = directory / recipient
        assert {p.name for p in folder.iterdir()} == FILES, recipient
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["collaboration"] == COLLABORATION and manifest["month"] == month and manifest["recipient"] == recipient
        assert manifest["policy_hash"] == content_hash(policy)
        assert datetime.fromisoformat(manifest["generated_at"]) == T1
        # epsilon and query id of every section it received: the policy's epsilon, the ledger's query id
        assert [s["name"] for s in manifest["sections"]] == names
        for s in manifest["sections"]:
            assert Decimal(s["epsilon"]) == eps[s["name"]], s
            assert s["query_id"] in released, s
        assert Decimal(manifest["epsilon_total"]) == sum((eps[n] for n in names), start=Decimal(0))
        # data versions and upload times of every partner's every dataset in the policy
        datasets = {tuple(q.split(".", 1)) for q in policy.datasets}
        assert {(p, d) for p, by in manifest["data"].items() for d in by} == datasets
        for partner, by in manifest["data"].items():
            for dataset, info in by.items():
                assert info["version"] == 1 and info["status"] == "ok", (partner, dataset, info)
                assert built.started <= datetime.fromisoformat(info["uploaded_at"]) <= built.finished, (partner, dataset, info)
        assert manifest["missing"] == []
        # the hash of every file, checked against the bytes on disk
        assert set(manifest["files"]) == FILES - {"manifest.json"}
        for name, entry in manifest["files"].items():
            assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest(), (recipient, name)
    assert sorted(first_run.result.files) == sorted(directory / r / f for r in wanted for f in FILES)
    assert [p.name for p in directory.parent.iterdir()] == [month]  # no staging directory left behind


# --- 2. a re-run ---------------------------------------------------------------------------------


def test_rerun_charges_nothing_and_changes_only_the_generated_time(collab: Collab, first_run: Run, rerun: Run) -> None:
    assert rerun.charges == first_run.charges  # not one new charge, for any account
    assert rerun.result.charged == {} and sorted(rerun.result.reused) == sorted(section_epsilons(collab))
    assert rerun.files.keys() == first_run.files.keys()
    old, new = shown(T1).encode(), shown(T2).encode()
    for path, before in first_run.files.items():
        after = rerun.files[path]
        name = path.rsplit("/", 1)[1]
        if name in ("results.csv", "results.parquet"):
            assert after == before, path
        elif name == "report.html":
            assert old in before and new in after and old not in after, path
            assert after.replace(new, old) == before, path
        elif name == "report.pdf":
            streams_before, streams_after = pdf_streams(before), pdf_streams(after)
            assert any(old in s for s in streams_before) and not any(old in s for s in streams_after), path
            assert [s.replace(new, old) for s in streams_after] == streams_before, path
        else:
            manifest_before, manifest_after = json.loads(before), json.loads(after)
            assert manifest_after.pop("generated_at") == T2.isoformat() and manifest_before.pop("generated_at") == T1.isoformat()
            for changed in ("report.html", "report.pdf"):
                del manifest_before["files"][changed], manifest_after["files"][changed]
            assert manifest_after == manifest_before, path  # same query ids, data versions, epsilon, csv/parquet hashes


def test_same_report_same_time_gives_byte_identical_files(first_run: Run, interrupted: dict[str, Interrupted]) -> None:
    """The recipient a later run rendered at the same generated time (before it was interrupted)."""
    for case in interrupted.values():
        recipient = case.staging[0].name
        assert case.captured.keys() == {n for n in FILES}
        for name, data in case.captured.items():
            assert data == first_run.files[f"{recipient}/{name}"], name


# --- 3. epsilon and recipients -------------------------------------------------------------------


def test_month_is_charged_its_sections_once_and_each_recipient_gets_only_its_sections(collab: Collab, first_run: Run) -> None:
    charges = report_charges(first_run.charges)
    eps = section_epsilons(collab)
    assert total(charges) == sum(eps.values()) == Decimal("2.0")
    assert sorted(Decimal(c["epsilon"]) for c in charges) == sorted(eps.values())  # one charge per section
    assert {c["purpose"] for c in charges} == {"report"}
    assert {name: Decimal(e) for name, e in first_run.result.charged.items()} == eps  # all charged by the first run
    wanted = sections_for(collab)
    assert wanted[BRAND] == list(eps)  # the brand receives all eleven
    assert len(wanted[BRAND]) == 11
    for recipient, names in wanted.items():
        manifest = json.loads(first_run.files[f"{recipient}/manifest.json"])
        assert [s["name"] for s in manifest["sections"]] == names
        assert manifest["withheld_sections"] == [n for n in eps if n not in names]
        in_results = {r["section"] for r in csv_rows(first_run.files[f"{recipient}/results.csv"])}
        assert in_results == set(names), recipient
        page = first_run.files[f"{recipient}/report.html"].decode()
        assert not {k.split("|", 1)[0] for k in cells(page)} - set(names), recipient
    for dealer in (NORTH, LAKE):
        manifest = json.loads(first_run.files[f"{dealer}/manifest.json"])
        withheld = set(manifest["withheld_sections"])
        assert {"attribution_channel_last_touch", "attribution_channel_linear", "attribution_channel_position_based",
                "contracts_ending_by_product", "finance_funnel"} <= withheld
        shown_to_dealer = {r["section"] for r in csv_rows(first_run.files[f"{dealer}/results.csv"])}
        assert not any(s.startswith("attribution_channel_") or s == "contracts_ending_by_product" for s in shown_to_dealer)
        assert "attribution_channel_" not in first_run.files[f"{dealer}/results.csv"].decode()


# --- 4. a failure halfway ------------------------------------------------------------------------


def test_failure_halfway_leaves_no_partial_report_and_keeps_the_previous_one(interrupted: dict[str, Interrupted], month: str) -> None:
    over, empty = interrupted["over_complete"], interrupted["into_empty"]
    # over a complete report: the report on disk is exactly what it was, nothing staged is left
    assert over.before and over.after == over.before
    assert over.listing == [month]
    # into an empty directory: no report for the month at all, and no staging directory
    assert empty.before == {} and empty.after == {}
    assert empty.listing == []
    for case in (over, empty):
        staging = case.staging[0].parent
        assert staging.parent == case.out / COLLABORATION and staging.name != month
        assert not staging.exists()
        assert case.charges_after == case.charges_before  # every section came from the stored release


# --- 5. missing partner data ---------------------------------------------------------------------

MISSING = (LAKE, "test_drives")


def _build_without_upload(root: Path, repo: Path, raw_source: Path, skip: tuple[str, str]) -> Collab:
    """``build_collab``, except that ``skip`` (partner, dataset) is prepared but never uploaded."""
    c = _layout(root, repo)
    _raw_data(c, raw_source, None)
    _keys(c)
    for pid in sorted(c.partners()):
        _prepare_one(c, pid, c.prepared / pid)
    audit = c.audit()
    with Store.open(c.store, c.secrets()) as store:
        for pid in sorted(c.partners()):
            for dataset, pair in c.uploads(pid).items():
                if (pid, dataset) != skip:
                    ingest_upload(store, c.partners_dir, pid, pair.arrow, pair.manifest, actor=pid, audit=audit)
    _write_policy(c, {}, None)
    _sign_and_activate(c)
    return c


@pytest.fixture(scope="module")
def missing(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Iterator[tuple[Collab, LiveGateway]]:
    c = _build_without_upload(tmp_path_factory.mktemp("missing") / "collab", repo, synth_4k, MISSING)
    with serve(c.config()) as live:
        yield c, live


def _two_recipients(policy: dict[str, Any]) -> None:
    """Report to two recipients only, the brand and the dealer with the gap (rendering is the slow part)."""
    keep = [BRAND, LAKE]
    policy["report"]["recipients"] = keep
    for s in policy["report"]["sections"]:
        if "recipients" in s:
            s["recipients"] = [r for r in s["recipients"] if r in keep]


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Iterator[tuple[Collab, LiveGateway]]:
    """Lakeside uploaded test_drives, but the file has no rows (its raw export had only a header)."""

    def write_raw(raw: Path) -> None:
        shutil.copytree(synth_4k, raw, dirs_exist_ok=True)
        path = raw / MISSING[0] / f"{MISSING[1]}.csv"
        path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")

    c = build_collab(tmp_path_factory.mktemp("empty") / "collab", repo, write_raw=write_raw, policy_edit=_two_recipients,
                     allow_shrink=True)  # an empty version is refused unless the partner signs that it means it
    with serve(c.config()) as live:
        yield c, live


def test_missing_dataset_fails_with_exit_3_naming_partner_and_dataset(missing: tuple[Collab, LiveGateway], tmp_path: Path) -> None:
    c, live = missing
    month = report_month(c)
    done = cli(tmp_path / "out", month, live.url, c.mint(BRAND, "report"))
    assert done.exit_code == 3, done.output
    error = cli_error(done)
    assert error["code"] == "report.data_incomplete"
    assert "lakeside-autos" in error["message"] and "test_drives" in error["message"]
    assert not (tmp_path / "out" / COLLABORATION / month).exists()
    assert c.ledger().charges(COLLABORATION, month) == []  # refused before anything was released


def test_missing_dataset_with_allow_partial_writes_the_report_naming_the_gap(missing: tuple[Collab, LiveGateway], tmp_path: Path) -> None:
    c, live = missing
    month = report_month(c)
    done = cli(tmp_path / "out", month, live.url, c.mint(BRAND, "report"), "--allow-partial")
    assert done.exit_code == 0, done.output
    for recipient in sections_for(c):
        page = (tmp_path / "out" / COLLABORATION / month / recipient / "report.html").read_text()
        gap = page.find("never uploaded test_drives")
        assert 0 <= gap < page.find("data-key"), recipient


def test_section_over_a_missing_dataset_is_refused_before_it_is_charged(missing: tuple[Collab, LiveGateway]) -> None:
    c, live = missing
    month = report_month(c)
    before = c.ledger().charges(COLLABORATION, month)
    with httpx.Client(base_url=live.url, headers=bearer(c.mint(BRAND, "report")), timeout=120) as http:
        response = http.post(f"/v1/reports/{COLLABORATION}/{month}/sections/funnel_by_month")
    check_problem(response, "query.dataset_missing")
    assert c.ledger().charges(COLLABORATION, month) == before


def test_empty_dataset_fails_with_exit_3_and_allow_partial_names_the_gap_on_page_one(empty: tuple[Collab, LiveGateway], tmp_path: Path) -> None:
    c, live = empty
    month = report_month(c)
    key = c.mint(BRAND, "report")
    out = tmp_path / "out"
    refused = cli(out, month, live.url, key)
    assert refused.exit_code == 3, refused.output
    message = cli_error(refused)["message"]
    assert "lakeside-autos" in message and "test_drives" in message
    assert not out.exists() or not any(out.rglob("*.html"))
    assert c.ledger().charges(COLLABORATION, month) == []

    done = cli(out, month, live.url, key, "--allow-partial")
    assert done.exit_code == 0, done.output
    assert "partial" in done.stdout
    for recipient in sections_for(c):
        folder = out / COLLABORATION / month / recipient
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["data"][LAKE]["test_drives"]["status"] == "empty"
        assert any("lakeside-autos" in m and "test_drives" in m for m in manifest["missing"])
        page = (folder / "report.html").read_text()
        summary_end = page.find("data-key")  # the first released number: page one's KPIs begin there
        gap = page.find("test_drives")
        assert 0 <= gap < summary_end, recipient
        assert "lakeside-autos" in page[:summary_end] and "Missing from this report" in page[:summary_end]


# --- 6. what a report key and an analyst key may not do ------------------------------------------


def test_report_key_cannot_run_ad_hoc_queries(collab: Collab, gateway: LiveGateway, report_key: str) -> None:
    current = datetime.now(UTC).strftime("%Y-%m")
    before = collab.ledger().charges(COLLABORATION, current)
    body = {"collaboration": COLLABORATION, "template": "funnel", "params": {"dimensions": ["model"]}, "epsilon": 0.1}
    with httpx.Client(base_url=gateway.url, headers=bearer(report_key), timeout=60) as http:
        check_problem(http.post("/v1/queries", json=body), "auth.forbidden")
        check_problem(http.post("/v1/queries", json={"collaboration": COLLABORATION, "sql": "SELECT COUNT(*) FROM x", "epsilon": 0.1}),
                      "auth.forbidden")
    assert collab.ledger().charges(COLLABORATION, current) == before


def test_month_not_complete_is_refused(collab: Collab, gateway: LiveGateway, report_key: str, tmp_path: Path) -> None:
    current = datetime.now(UTC).strftime("%Y-%m")
    done = cli(tmp_path / "out", current, gateway.url, report_key)
    assert done.exit_code == 2, done.output
    assert cli_error(done)["code"] == "query.invalid_params"
    assert not (tmp_path / "out" / COLLABORATION / current).exists()
    assert cli(tmp_path / "out", "2026-13", gateway.url, report_key).exit_code == 2  # not a month at all
    with httpx.Client(base_url=gateway.url, headers=bearer(report_key), timeout=60) as http:
        check_problem(http.post(f"/v1/reports/{COLLABORATION}/{current}/sections/funnel_by_month"), "query.invalid_params")
        plan = http.get(f"/v1/reports/{COLLABORATION}/{current}")
        assert plan.status_code == 200 and plan.json()["complete"] is False
    assert report_charges(collab.ledger().charges(COLLABORATION, current)) == []


def test_analyst_key_is_refused_on_the_report_endpoints(collab: Collab, gateway: LiveGateway, month: str) -> None:
    before = collab.ledger().charges(COLLABORATION, month)
    for partner in (BRAND, NORTH):
        with httpx.Client(base_url=gateway.url, headers=bearer(collab.mint(partner, "analyst")), timeout=60) as http:
            check_problem(http.get(f"/v1/reports/{COLLABORATION}/{month}"), "auth.forbidden")
            check_problem(http.post(f"/v1/reports/{COLLABORATION}/{month}/sections/funnel_by_month"), "auth.forbidden")
    assert collab.ledger().charges(COLLABORATION, month) == before


# --- 7. the reservation ----------------------------------------------------------------------------
#
# The reservation is held back from the collaboration cap (the report is charged once, to no
# partner): all analysts together may spend cap - reservation = 28 a month, a partner its whole 10.


def test_analysts_cannot_spend_the_report_reservation(collab: Collab, october_spent: Spent, first_run: Run) -> None:
    """In the report's month the analysts were refused at cap - reservation; the report still got its 2.0."""
    privacy = policy_data(collab)["privacy"]
    reserve = Decimal(str(privacy["report_reservation"]))
    cap = Decimal(str(privacy["collaboration_monthly_cap"]))
    per_partner = Decimal(str(privacy["monthly_budget_per_partner"]))
    queries = [c for c in first_run.charges if c["purpose"] == "query"]
    assert total(queries) == sum(october_spent.per_partner.values()) == cap - reserve  # 28 of 30
    assert all(v <= per_partner for v in october_spent.per_partner.values())
    assert october_spent.refused > 0
    assert total(report_charges(first_run.charges)) == reserve == Decimal("2.0")
    assert total(first_run.charges) == cap


def _query(params: dict[str, Any], epsilon: float) -> dict[str, Any]:
    return {"collaboration": COLLABORATION, "template": "funnel", "params": params, "epsilon": epsilon}


def test_analyst_queries_are_refused_at_cap_minus_reservation(collab: Collab, gateway: LiveGateway) -> None:
    """Through the gateway, this month: a partner may spend its whole budget, all partners together only cap - reservation."""
    privacy = policy_data(collab)["privacy"]
    per_partner = Decimal(str(privacy["monthly_budget_per_partner"]))
    reserve = Decimal(str(privacy["report_reservation"]))
    usable = Decimal(str(privacy["collaboration_monthly_cap"])) - reserve
    assert (per_partner, usable) == (10, 28)
    distinct = iter([{"filters": {"model": list(s)}} for k in (1, 2, 3) for s in combinations(MODELS, k)])  # 41 questions, none cached
    current = datetime.now(UTC).strftime("%Y-%m")
    assert collab.ledger().charges(COLLABORATION, current) == []

    def client(partner: str) -> httpx.Client:
        return httpx.Client(base_url=gateway.url, headers=bearer(collab.mint(partner, "analyst")), timeout=120)

    with client(BRAND) as brand, client(NORTH) as north, client(LAKE) as lake:
        for http in (brand, north):  # each spends its whole 10: nothing of a partner's own budget is reserved
            for _ in range(10):
                assert http.post("/v1/queries", json=_query(next(distinct), 1.0)).status_code == 200
            over = check_problem(http.post("/v1/queries", json=_query(next(distinct), 0.5)), "budget.exhausted")
            assert over["details"]["scope"] == "partner"
        for _ in range(7):  # 27 spent
            assert lake.post("/v1/queries", json=_query(next(distinct), 1.0)).status_code == 200
        assert lake.post("/v1/queries", json=_query(next(distinct), 0.5)).status_code == 200  # 27.5: lakeside has 6.5 of its 10 left
        refused = check_problem(lake.post("/v1/queries", json=_query(next(distinct), 1.0)), "budget.exhausted")
        assert refused["details"]["scope"] == "collaboration", refused
        assert Decimal(refused["details"]["collaboration_remaining"]) == Decimal("0.5"), refused
        assert lake.post("/v1/queries", json=_query(next(distinct), 0.5)).status_code == 200  # exactly cap - reservation
        check_problem(lake.post("/v1/queries", json=_query(next(distinct), 0.000001)), "budget.exhausted")
        budget = lake.get("/v1/budget", params={"collaboration": COLLABORATION}).json()
    assert budget["partner_spent"] == 8.0 and budget["reserved_for_report"] == 2.0 and budget["collaboration_remaining"] == 0.0, budget
    assert total(collab.ledger().charges(COLLABORATION, current)) == usable


# --- 8. the numbers in the HTML --------------------------------------------------------------------


def test_every_released_number_is_printed_and_no_suppressed_cell_is(first_run: Run) -> None:
    checked = suppressed = 0
    for recipient in sorted({path.split("/", 1)[0] for path in first_run.files}):
        rows = csv_rows(first_run.files[f"{recipient}/results.csv"])
        page = cells(first_run.files[f"{recipient}/report.html"].decode())
        assert rows
        for row in rows:
            key = f"{row['section']}|{row['row_key']}|{row['measure']}"
            texts = page.get(key)
            assert texts, f"{recipient}: {key} is not in the HTML"
            if row["suppressed"] == "true":
                assert row["value"] == row["ci95_low"] == row["ci95_high"] == "", row
                assert all(t == "suppressed" for t in texts), (key, texts)
                suppressed += 1
                continue
            if not row["value"]:
                assert all(t.startswith("n/a") for t in texts), (key, texts)
                continue
            expected = with_separators(row["value"]) + ("%" if row["unit"] == "percent" else "")
            if row["ci95_low"] or row["ci95_high"]:
                low = with_separators(row["ci95_low"]) if row["ci95_low"] else "n/a"
                high = with_separators(row["ci95_high"]) if row["ci95_high"] else "n/a"
                expected += f" ({low}–{high})"
            assert all(t == expected for t in texts), f"{key}: expected {expected!r}, the HTML prints {texts!r}; CSV row {row!r}"
            checked += 1
        # nothing printed as a number that the CSV has as suppressed, and every suppressed cell is in the CSV
        printed_suppressed = {k for k, texts in page.items() if any(t == "suppressed" for t in texts)}
        assert printed_suppressed == {f"{r['section']}|{r['row_key']}|{r['measure']}" for r in rows if r["suppressed"] == "true"}
    # the month has both (it is not a vacuous check); how many are shown depends on the noise (about 90-110)
    assert checked > 50 and suppressed > 0


# --- 9. gateway unreachable, key refused -----------------------------------------------------------


def test_unreachable_gateway_or_refused_key_exits_5(collab: Collab, gateway: LiveGateway, month: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    closed = f"http://127.0.0.1:{free_port()}"
    done = cli(out, month, closed, collab.mint(BRAND, "report"))
    assert done.exit_code == 5, done.output
    assert "127.0.0.1" in cli_error(done)["message"]

    unknown = cli(out, month, gateway.url, "crk_" + "0" * 40)
    assert unknown.exit_code == 5, unknown.output
    assert cli_error(unknown)["code"].startswith("auth.")

    keys = ApiKeys(collab.store, collab.partners())
    key_id, plaintext = keys.create_key(BRAND, "report", "to-revoke", actor="system-test")
    keys.revoke_key(key_id, actor="system-test")
    revoked = cli(out, month, gateway.url, plaintext)
    assert revoked.exit_code == 5, revoked.output
    assert cli_error(revoked)["code"].startswith("auth.")
    assert not out.exists() or not any(out.rglob("*"))
