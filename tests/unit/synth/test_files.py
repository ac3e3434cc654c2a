"""The raw partner files: one per declared dataset, declared columns, parseable in-domain values."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from _synth_recompute import Recomputed

from cleanroom.partners import JOIN_KEY, load_partners
from cleanroom.synth.domains import DEALERS, DOMAINS, period_start
from cleanroom.synth.writer import PII_COLUMNS

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
END = date(2026, 10, 31)
# Business events happen inside the data period; contract dates and consent grants may be older.
EVENT_COLUMNS = {"session_at", "touched_at", "lead_at", "drive_at", "sold_at", "applied_at"}


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_one_file_per_declared_dataset_and_truth_outside_partner_folders(synth_dir: Path, repo: Path) -> None:
    partners = load_partners(repo / "partners")
    declared = {f"{p}/{d}.csv" for p, partner in partners.items() for d in partner.datasets}
    written = {str(p.relative_to(synth_dir)) for p in synth_dir.rglob("*") if p.is_file()}
    assert written == declared | {"ground_truth.json"}


def test_columns_are_pii_then_exactly_the_declared_ones(synth_dir: Path, repo: Path) -> None:
    for pid, partner in load_partners(repo / "partners").items():
        for name, dataset in partner.datasets.items():
            header, _ = _read(synth_dir / pid / f"{name}.csv")
            assert header == list(PII_COLUMNS) + [c for c in dataset.columns if c != JOIN_KEY], (pid, name)


def _check_value(kind: str, column: str, value: str, where: str) -> None:
    if kind == "timestamp":
        assert TIMESTAMP.match(value), where
        datetime.fromisoformat(value)
    elif kind == "date":
        assert DATE.match(value), where
        date.fromisoformat(value)
    elif kind == "bool":
        assert value in ("true", "false"), where
    elif kind == "int64":
        assert int(value) > 0, where
    elif column in DOMAINS:
        assert value in DOMAINS[column], where
    else:
        assert value.strip(), where


def test_values_parse_and_lie_in_the_public_domains(synth_dir: Path, repo: Path) -> None:
    for pid, partner in load_partners(repo / "partners").items():
        for name, dataset in partner.datasets.items():
            _, rows = _read(synth_dir / pid / f"{name}.csv")
            assert rows, (pid, name)
            for i, row in enumerate(rows):
                for column, spec in dataset.columns.items():
                    if column == JOIN_KEY:
                        continue
                    value = row[column]
                    if value == "":
                        assert spec.nullable, f"{pid}/{name} row {i}: empty {column}"
                        continue
                    _check_value(spec.type, column, value, f"{pid}/{name} row {i} {column}={value!r}")


def test_dealer_ids_belong_to_their_dealer_group(recomputed: Recomputed) -> None:
    for group, ids in DEALERS.items():
        for dataset in ("leads", "test_drives", "sales"):
            assert {r["dealer_id"] for r in recomputed.rows[(group, dataset)]} <= set(ids)


def test_events_inside_the_period_and_consent_changes_before_the_end_date(recomputed: Recomputed) -> None:
    start = datetime.combine(period_start(END), datetime.min.time())
    limit = datetime.combine(END, datetime.min.time())  # midnight starting the end date
    for (partner, dataset), rows in recomputed.rows.items():
        for r in rows:
            for column in EVENT_COLUMNS & r.keys():
                assert start <= datetime.fromisoformat(r[column]) < limit + timedelta(days=1), (partner, dataset, r[column])
            if dataset == "consent":
                granted = datetime.fromisoformat(r["granted_at"])
                assert granted < limit, (partner, r)
                assert not r["revoked_at"] or granted < datetime.fromisoformat(r["revoked_at"]) < limit, (partner, r)
            if dataset == "contracts":
                assert date.fromisoformat(r["start_date"]) < date.fromisoformat(r["end_date"])
                assert date.fromisoformat(r["end_date"]) >= period_start(END), "finance exports its running book"


def test_one_consent_row_per_person_and_purpose(recomputed: Recomputed) -> None:
    for (partner, dataset), rows in recomputed.rows.items():
        if dataset == "consent":
            counts = Counter((r["crm_id"], r["purpose"]) for r in rows)
            assert max(counts.values()) == 1, partner


@pytest.mark.parametrize("by", ["crm_id", "_key"])
def test_fewer_than_50_rows_per_person_and_dataset(recomputed: Recomputed, by: str) -> None:
    for key, rows in recomputed.rows.items():
        counts = Counter(r[by] for r in rows if r[by])
        assert max(counts.values()) < 50, key
    assert max(Counter(r["crm_id"] for r in recomputed.rows[("aurora-motors", "campaign_touches")]).values()) > 5
