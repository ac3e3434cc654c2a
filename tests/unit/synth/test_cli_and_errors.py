"""``cleanroom synth`` on the command line, and bad input refused before anything is written."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanroom.cli.main import app
from cleanroom.errors import ConfigError
from cleanroom.synth import generate

runner = CliRunner()


def test_cli_json_summary(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["synth", "--customers", "400", "--seed", "5", "--out", str(out), "--partners", str(repo / "partners"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["customers"] == 400 and summary["rows"] == sum(summary["files"].values())
    assert (out / "ground_truth.json").exists()
    assert json.loads((out / "ground_truth.json").read_text())["seed"] == 5


def test_cli_human_output_and_help(tmp_path: Path, repo: Path) -> None:
    result = runner.invoke(app, ["synth", "--customers", "300", "--out", str(tmp_path / "o"), "--partners", str(repo / "partners")])
    assert result.exit_code == 0, result.output
    assert "aurora-motors/web_sessions.csv" in result.stdout and "ground truth" in result.stdout
    assert "--end-date" in runner.invoke(app, ["synth", "--help"]).stdout


def test_cli_error_names_the_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "o"), "--partners", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "partner.unknown"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("customers", "seed", "end"), [(0, 1, None), (10_000_001, 1, None), (10, -1, None), (10, 1, date(2022, 6, 30))])
def test_bad_arguments(tmp_path: Path, repo: Path, customers: int, seed: int, end: date | None) -> None:
    with pytest.raises(ConfigError) as err:
        generate(customers, seed, tmp_path / "o", end or date(2026, 10, 31), partners_dir=repo / "partners")
    assert err.value.code == "config.invalid"
    assert not (tmp_path / "o").exists()


def test_partner_file_the_generator_cannot_satisfy(tmp_path: Path, partners_dir: Path) -> None:
    path = partners_dir / "aurora-motors.toml"
    path.write_text(path.read_text() + '\n[datasets.newsletter]\n[datasets.newsletter.columns]\nhid = { type = "string", tag = "join_key" }\n')
    with pytest.raises(ConfigError) as err:
        generate(100, 1, tmp_path / "o", partners_dir=partners_dir)
    assert err.value.code == "partner.invalid" and "newsletter" in err.value.message
    assert not (tmp_path / "o").exists()


def test_declared_column_the_generator_does_not_write(tmp_path: Path, partners_dir: Path) -> None:
    path = partners_dir / "lakeside-autos.toml"
    text = path.read_text().replace('source = { type = "string", tag = "dimension"', 'channel = { type = "string", tag = "dimension" }\nsource = { type = "string", tag = "dimension"', 1)
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        generate(100, 1, tmp_path / "o", partners_dir=partners_dir)
    assert err.value.code == "partner.invalid"
    assert "lakeside-autos.datasets.leads" in err.value.message and "channel" in err.value.message


def test_another_end_date_moves_the_period(tmp_path: Path, repo: Path) -> None:
    generate(400, 3, tmp_path / "o", date(2025, 6, 30), partners_dir=repo / "partners")
    truth = json.loads((tmp_path / "o" / "ground_truth.json").read_text())
    assert truth["months"][0] == "2024-07" and truth["months"][-1] == "2025-06"
    assert truth["lifecycle"]["window"] == {"start": "2025-07-01", "end": "2025-09-30"}
    assert set(truth["funnel"]["stage_activity"]["by"]["month"]["cells"]["configurator"]) == set(truth["months"])
    assert list(truth["funnel"]["cohort"]["configurator"]["by"]["month"]["cells"]) == truth["months"]
    sessions = (tmp_path / "o" / "aurora-motors" / "web_sessions.csv").read_text().splitlines()[1:]
    assert all("2024-07-01" <= line.split(",")[5].strip('"')[:10] <= "2025-06-30" for line in sessions)
