"""``cleanroom serve | apikey | query``: argument handling and output (the live server is in tests/system)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cleanroom.cli.gateway import parse_params, result_footer, result_table
from cleanroom.cli.main import app
from cleanroom.client import QueryResult
from cleanroom.errors import QueryError

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr with rich's line wrapping undone."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_apikey_create_list_revoke(tmp_path: Path, partners_dir: Path) -> None:
    where = ["--store", str(tmp_path / "store"), "--partners", str(partners_dir)]
    code, out, err = _run("apikey", "create", "--partner", "aurora-motors", "--role", "report", "--label", "monthly", *where, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["api_key"].startswith("crk_") and created["role"] == "report"
    code, out, err = _run("apikey", "create", "--partner", "aurora-motors", "--role", "analyst", *where)
    assert code == 0 and "crk_" in out and "shown only once" in err
    code, out, _ = _run("apikey", "list", *where, "--json")
    listed = json.loads(out)
    assert [(k["role"], k["label"], k["revoked_at"]) for k in listed] == [("report", "monthly", None), ("analyst", "", None)]
    assert "crk_" not in out
    code, out, _ = _run("apikey", "revoke", created["key_id"], *where)
    assert code == 0 and f"revoked {created['key_id']}" in out
    code, out, _ = _run("apikey", "list", *where)
    assert created["key_id"] in out and "crk_" not in out


def test_apikey_errors_carry_their_code(tmp_path: Path, partners_dir: Path) -> None:
    where = ["--store", str(tmp_path / "store"), "--partners", str(partners_dir)]
    code, out, _ = _run("apikey", "create", "--partner", "acme", "--role", "analyst", *where, "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "partner.unknown"
    code, _, err = _run("apikey", "create", "--partner", "aurora-motors", "--role", "root", *where)
    assert code == 2 and "role 'root' is not one of analyst" in err
    code, out, _ = _run("apikey", "revoke", "kid_nope", *where, "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "auth.invalid"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "gateway.example.com", "::"])
def test_serve_refuses_a_non_loopback_host(host: str, tmp_path: Path) -> None:
    code, _, err = _run("serve", "--host", host, "--store", str(tmp_path))
    assert code == 2 and "not a loopback address" in err and "--allow-remote" in err


def test_query_needs_exactly_one_of_template_or_sql() -> None:
    code, out, _ = _run("query", "--collaboration", "aurora-2026", "--api-key", "crk_x", "--url", "http://127.0.0.1:9", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "query.invalid"


def test_query_against_an_unreachable_gateway() -> None:
    args = ["query", "--collaboration", "aurora-2026", "--template", "funnel", "--api-key", "crk_x", "--url", "http://127.0.0.1:9"]
    code, out, _ = _run(*args, "--json")
    error = json.loads(out)["error"]
    assert code == 2 and error["code"] == "config.invalid" and "127.0.0.1:9" in error["message"]


def test_parse_params() -> None:
    assert parse_params(["by=[\"model\",\"region\"]", "lookback_days=30", "model=aster", "x=a=b"], '{"lookback_days": 7, "y": true}') == {
        "by": ["model", "region"],
        "lookback_days": 30,
        "model": "aster",
        "x": "a=b",
        "y": True,
    }
    for bad_pairs, bad_json in [(["novalue"], None), (["=x"], None), ([], "[1]"), ([], "{nope")]:
        with pytest.raises(QueryError) as exc:
            parse_params(bad_pairs, bad_json)
        assert exc.value.code == "query.invalid_params"


def test_result_table_shows_interval_and_suppression() -> None:
    result = QueryResult(
        query_id="q_1",
        template="funnel",
        columns=["model", "persons", "persons_ci95", "conversion", "conversion_ci95", "suppressed", "suppressed_values"],
        rows=[["aster", 412, [400.0, 424.0], 0.25, [0.1, 0.4], False, []], ["dune", None, None, None, None, True, ["persons"]]],
        epsilon_charged=0.5,
        budget_remaining=2.25,
        noise=[{"part": "persons", "mechanism": "discrete_laplace", "scale": 4.0, "ci95": 12.04}],  # type: ignore[list-item]
        suppressed_cells=1,
        cached=False,
    )
    console = Console(record=True, width=100)
    console.print(result_table(result))
    text = console.export_text()
    assert "412 [400–424]" in text and "suppressed" in text and "aster" in text
    assert "0.250 [0.100–0.400]" in text
    assert text.count("suppressed") == 1, "only the value listed in suppressed_values reads suppressed; the rest is '-'"
    assert "persons_ci95" not in text and " 0 " not in text  # intervals fold into values; suppressed is never 0
    assert "budget remaining 2.25" in result_footer(result) and "1 suppressed" in result_footer(result)
    assert "0 (cached result)" in result_footer(result.model_copy(update={"cached": True, "epsilon_charged": 0.0}))
