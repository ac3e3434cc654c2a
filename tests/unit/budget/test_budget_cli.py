"""``cleanroom budget show``: spent and remaining per partner and month, from the ledger alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cleanroom.budget import Epsilon, Ledger, summarize
from cleanroom.cli import audit as audit_cli

E = Epsilon.parse


@pytest.fixture()
def app() -> typer.Typer:
    """Only this module's commands: other command groups are not under test here."""
    app = typer.Typer()
    audit_cli.register(app)
    return app


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    ledger = Ledger(tmp_path / "budget.sqlite")
    common = {"collaboration": "aurora-2026", "collaboration_cap": E(3), "report_reserve": E("0.2"), "actor": "a"}
    ledger.charge(partner="aurora-motors", month="2026-03", epsilon=E("0.5"), partner_budget=E(1), purpose="query", query_id="q1", **common)  # type: ignore[arg-type]
    ledger.charge(partner="aurora-motors", month="2026-03", epsilon=E("0.3"), partner_budget=E(1), purpose="report", query_id="r1", **common)  # type: ignore[arg-type]
    ledger.charge(partner="northside-dealers", month="2026-04", epsilon=E("0.25"), partner_budget=E(2), purpose="query", query_id="q2", **common)  # type: ignore[arg-type]
    return tmp_path


def test_summary_numbers(store: Path) -> None:
    s = summarize(store / "budget.sqlite", "aurora-2026")
    assert [m.month for m in s.months] == ["2026-03", "2026-04"] and s.lifetime == E("1.05")
    march = s.months[0].partners[0]
    assert (march.spent_queries, march.spent_reports, march.remaining_queries, march.remaining_reports) == (E("0.5"), E("0.3"), E("0.2"), E("0.2"))
    assert s.months[0].collaboration_remaining_queries == E("2.2")  # 3 - 0.5 - max(0.2, 0.3)


def test_budget_show_json(app: typer.Typer, store: Path) -> None:
    result = CliRunner().invoke(app, ["budget", "show", "--collaboration", "aurora-2026", "--store", str(store), "--month", "2026-04", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["lifetime"] == "1.05" and [m["month"] for m in data["months"]] == ["2026-04"]
    assert data["months"][0]["partners"][0] | {"limits": None} == {
        "partner": "northside-dealers", "spent_queries": "0.25", "spent_reports": "0", "spent": "0.25",
        "remaining_queries": "1.55", "remaining_reports": "1.75", "limits": None,
    }


def test_budget_show_human(app: typer.Typer, store: Path) -> None:
    result = CliRunner(env={"COLUMNS": "160"}).invoke(app, ["budget", "show", "--collaboration", "aurora-2026", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "aurora-motors" in result.output and "northside-dealers" in result.output
    assert "lifetime epsilon for aurora-2026: 1.05" in result.output


def test_budget_show_without_a_ledger_creates_nothing(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["budget", "show", "--collaboration", "x", "--store", str(tmp_path / "empty"), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["lifetime"] == "0"
    assert not (tmp_path / "empty").exists()


def test_budget_show_rejects_a_bad_month(app: typer.Typer, store: Path) -> None:
    result = CliRunner().invoke(app, ["budget", "show", "--collaboration", "aurora-2026", "--store", str(store), "--month", "2026-13"])
    assert result.exit_code == 2 and "YYYY-MM" in result.output
