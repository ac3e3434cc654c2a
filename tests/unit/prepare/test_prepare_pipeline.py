"""prepare end to end on raw folders written by the test: schema, PII removal, signatures, counts, hids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from prepare_fixtures import PEOPLE, ROWS_PER_PERSON, SHARED, Person, Workspace, expected_hid, write_raw

from cleanroom.crypto import read_signing_key, sha256_file
from cleanroom.errors import ConfigError, PrepareError
from cleanroom.manifest import Manifest
from cleanroom.partners import get_partner
from cleanroom.prepare import SUMMARY_FILE, PrepareSummary, prepare_partner
from cleanroom.prepare import keying

NS = "northside-dealers"
LA = "lakeside-autos"


def _prepare(ws: Workspace, pid: str, out: Path, *, salt: bytes | None = None, raw: Path | None = None, workers: int = 1) -> PrepareSummary:
    partner = get_partner(ws.partners_dir, pid)
    return prepare_partner(partner, salt or ws.salt, raw or ws.raw, out, read_signing_key(ws.keys[pid]), workers=workers)


def _read(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def test_output_schema_is_exactly_the_declared_schema(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prepare(workspace, NS, out)
    partner = get_partner(workspace.partners_dir, NS)
    for name, dataset in partner.datasets.items():
        table = _read(out / f"{name}.arrow")
        assert table.schema.equals(dataset.arrow_schema(), check_metadata=True), name
        assert table.schema.names == list(dataset.columns)


def test_no_pii_survives_in_any_output_byte(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prepare(workspace, NS, out)
    leaving = sorted(p for p in out.iterdir() if p.name != SUMMARY_FILE)
    assert {p.suffix for p in leaving} == {".arrow", ".json"}
    blob = b"".join(p.read_bytes() for p in leaving)
    needles = ["example.com", "xn--bcher-kva", "Bücher", "Anna3", "Schmidt", "CRM-000", "1234005", "+4930", "first_name", "crm_id", "email", "phone"]
    for needle in needles:
        assert needle.encode() not in blob, needle


def test_manifests_verify_with_the_partners_uploader_key(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = _prepare(workspace, NS, out)
    public = get_partner(workspace.partners_dir, NS).public_key("uploader")
    other = get_partner(workspace.partners_dir, LA).public_key("uploader")
    for name, ds in summary.datasets.items():
        manifest = Manifest.read(out / ds.manifest)
        assert manifest.verify(public) and not manifest.verify(other)
        assert (manifest.partner, manifest.dataset, manifest.file) == (NS, name, f"{name}.arrow")
        assert manifest.row_count == _read(out / manifest.file).num_rows == ds.rows_out
        assert manifest.schema_hash == get_partner(workspace.partners_dir, NS).datasets[name].schema_hash()
        assert manifest.sha256 == ds.sha256


def _expected_counts(people: list[Person]) -> dict[str, object]:
    dropped = [p for p in people if p.kind is None]
    return {
        "keyed_by_email": ROWS_PER_PERSON * sum(p.kind == "email" for p in people),
        "keyed_by_phone": ROWS_PER_PERSON * sum(p.kind == "phone" for p in people),
        "rows_without_identity": ROWS_PER_PERSON * len(dropped),
        "email": {r: ROWS_PER_PERSON * n for r, n in Counter(p.email_reason for p in people if p.email_reason).items()},
        "phone": {r: ROWS_PER_PERSON * n for r, n in Counter(p.phone_reason for p in dropped).items()},
    }


def test_summary_counts_per_reason(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = _prepare(workspace, NS, out)
    want = _expected_counts(PEOPLE + SHARED)
    assert want["rows_without_identity"] > 0 and want["keyed_by_phone"] > 0
    for ds in summary.datasets.values():
        ident = ds.identity
        assert ds.rows_in == ROWS_PER_PERSON * len(PEOPLE + SHARED)
        assert ds.rows_out == ident.keyed_by_email + ident.keyed_by_phone == ds.rows_in - ident.rows_without_identity
        assert (ident.keyed_by_email, ident.keyed_by_phone) == (want["keyed_by_email"], want["keyed_by_phone"])
        assert ident.rows_without_identity == want["rows_without_identity"] == sum(ident.phone_unmatched.values())
        assert {k: v for k, v in ident.email_unmatched.items() if v} == want["email"]
        assert {k: v for k, v in ident.phone_unmatched.items() if v} == want["phone"]
    on_disk = json.loads((out / SUMMARY_FILE).read_text())
    assert PrepareSummary.model_validate(on_disk) == summary


def test_hids_follow_the_documented_construction(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prepare(workspace, NS, out)
    got = set(_read(out / "leads.arrow").column("hid").to_pylist())
    want = {expected_hid(workspace.salt, p) for p in PEOPLE + SHARED if p.kind is not None}
    assert got == want


def test_same_person_at_two_partners_meets_and_other_salt_does_not(workspace: Workspace, tmp_path: Path) -> None:
    _prepare(workspace, NS, tmp_path / "ns")
    _prepare(workspace, LA, tmp_path / "la")
    _prepare(workspace, LA, tmp_path / "la2", salt=os.urandom(32))
    ns = set(_read(tmp_path / "ns" / "sales.arrow").column("hid").to_pylist())
    la = set(_read(tmp_path / "la" / "sales.arrow").column("hid").to_pylist())
    la2 = set(_read(tmp_path / "la2" / "sales.arrow").column("hid").to_pylist())
    shared = {expected_hid(workspace.salt, p) for p in SHARED}
    assert shared <= ns & la
    assert ns & la == shared | {expected_hid(workspace.salt, p) for p in PEOPLE[:5]}
    assert not (ns & la2) and len(la2) == len(la)


def test_parallel_workers_give_identical_output(workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keying, "PARALLEL_MIN_ROWS", 4)  # exercise the helper process on a small file
    one = _prepare(workspace, NS, tmp_path / "one", workers=1)
    two = _prepare(workspace, NS, tmp_path / "two", workers=2)
    assert two.workers == min(2, os.cpu_count() or 1)
    for name in one.datasets:
        assert _read(tmp_path / "one" / f"{name}.arrow").equals(_read(tmp_path / "two" / f"{name}.arrow"))
        assert one.datasets[name].identity == two.datasets[name].identity


def test_raw_may_be_the_partners_own_folder(workspace: Workspace, tmp_path: Path) -> None:
    summary = _prepare(workspace, LA, tmp_path / "out", raw=workspace.raw / LA)
    assert set(summary.datasets) == set(get_partner(workspace.partners_dir, LA).datasets)


def test_missing_raw_file_fails_before_writing_anything(workspace: Workspace, tmp_path: Path) -> None:
    (workspace.raw / NS / "sales.csv").unlink()
    out = tmp_path / "out"
    with pytest.raises(PrepareError) as exc:
        _prepare(workspace, NS, out)
    assert exc.value.code == "prepare.input_missing" and "sales.csv" in exc.value.message
    assert not out.exists()


def test_missing_declared_column_is_named(workspace: Workspace, tmp_path: Path) -> None:
    path = workspace.raw / NS / "leads.csv"
    path.write_text(path.read_text().replace(",source", ",lead_source", 1))
    with pytest.raises(PrepareError) as exc:
        _prepare(workspace, NS, tmp_path / "out")
    assert exc.value.code == "prepare.input_invalid"
    assert "leads.csv" in exc.value.message and "'source'" in exc.value.message
    assert exc.value.details["column"] == "source"


def _corrupt(path: Path, row: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[row]
    lines[row] = lines[row].replace(old, new, 1)
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    ("dataset", "old", "new", "column", "problem"),
    [
        ("sales", "2026-03-04T10:22:13", "04/03/2026", "sold_at", "as timestamp"),
        ("sales", "31000", "31k", "price_eur", "as int64"),
        ("leads", ",north,", ",,", "region", "non-nullable"),
    ],
)
def test_bad_value_names_file_column_and_row(workspace: Workspace, tmp_path: Path, dataset: str, old: str, new: str, column: str, problem: str) -> None:
    _corrupt(workspace.raw / NS / f"{dataset}.csv", 137, old, new)  # line 138 of the file, data row 137
    with pytest.raises(PrepareError) as exc:
        _prepare(workspace, NS, tmp_path / "out")
    assert exc.value.code == "prepare.input_invalid"
    assert f"{dataset}.csv" in exc.value.message and repr(column) in exc.value.message and problem in exc.value.message
    assert exc.value.details["row"] == 137 and "line 138" in exc.value.message


def test_a_failed_rerun_leaves_the_previous_outputs_intact(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prepare(workspace, NS, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != SUMMARY_FILE}
    _corrupt(workspace.raw / NS / "sales.csv", 5, "31000", "oops")  # leads and test_drives stage fine first
    with pytest.raises(PrepareError):
        _prepare(workspace, NS, out)
    assert not (out / SUMMARY_FILE).exists(), "a stale summary must not describe a failed run"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "outputs changed or temp files left behind"
    public = get_partner(workspace.partners_dir, NS).public_key("uploader")
    for manifest_file in out.glob("*.manifest.json"):
        manifest = Manifest.read(manifest_file)
        assert manifest.verify(public) and manifest.sha256 == sha256_file(out / manifest.file)


def test_a_successful_rerun_replaces_every_pair(workspace: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _prepare(workspace, NS, out)
    second = _prepare(workspace, NS, out, salt=os.urandom(32))
    assert sorted(p.name for p in out.iterdir()) == sorted([SUMMARY_FILE, *(f"{n}.arrow" for n in first.datasets), *(f"{n}.manifest.json" for n in first.datasets)])
    for name, ds in second.datasets.items():
        manifest = Manifest.read(out / ds.manifest)
        assert manifest.sha256 == sha256_file(out / ds.file) == ds.sha256 != first.datasets[name].sha256


def test_bad_salt_and_region_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    partner = get_partner(workspace.partners_dir, NS)
    key = read_signing_key(workspace.keys[NS])
    with pytest.raises(ConfigError) as exc:
        prepare_partner(partner, b"short", workspace.raw, tmp_path / "o", key)
    assert exc.value.code == "keys.invalid"
    with pytest.raises(ConfigError) as exc:
        prepare_partner(partner, workspace.salt, workspace.raw, tmp_path / "o", key, region="XX")
    assert exc.value.code == "config.invalid" and "XX" in exc.value.message


def test_raw_file_without_identifier_columns_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    partner = get_partner(workspace.partners_dir, NS)
    folder = tmp_path / "raw2"
    write_raw(folder, partner, PEOPLE[:3])
    path = folder / "consent.csv"
    path.write_text(path.read_text().replace("phone,", "mobile,", 1))
    with pytest.raises(PrepareError) as exc:
        _prepare(workspace, NS, tmp_path / "out", raw=folder)
    assert exc.value.details["column"] == "phone"


def test_prepare_never_imports_server_modules(repo: Path) -> None:
    code = (
        "import sys, cleanroom.prepare, cleanroom.keys, cleanroom.cli.prepare, cleanroom.cli.keys\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] and m.split('.')[0] == 'cleanroom' and len(m.split('.')) > 1 "
        "and m.split('.')[1] in {'store', 'ingest', 'engine', 'gateway', 'dp', 'budget'}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo)


def test_empty_and_identity_less_datasets_still_produce_valid_files(workspace: Workspace, tmp_path: Path) -> None:
    raw = workspace.raw / NS
    header = (raw / "leads.csv").read_text().splitlines()[0]
    (raw / "leads.csv").write_text(header + "\n")
    write_raw(tmp_path / "tmp", get_partner(workspace.partners_dir, NS), [p for p in PEOPLE if p.kind is None])
    (raw / "sales.csv").write_bytes((tmp_path / "tmp" / "sales.csv").read_bytes())
    out = tmp_path / "out"
    summary = _prepare(workspace, NS, out)
    public = get_partner(workspace.partners_dir, NS).public_key("uploader")
    for name in ("leads", "sales"):
        assert summary.datasets[name].rows_out == _read(out / f"{name}.arrow").num_rows == 0
        assert Manifest.read(out / f"{name}.manifest.json").verify(public)
    assert summary.datasets["sales"].identity.rows_without_identity == summary.datasets["sales"].rows_in > 0


def test_helpers_that_cannot_start_fall_back_to_one_process(workspace: Workspace, tmp_path: Path, repo: Path) -> None:
    """A script piped to ``python -`` has no __main__ file, so spawned helpers die on start-up."""
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from cleanroom.crypto import read_signing_key\n"
        "from cleanroom.partners import get_partner\n"
        "from cleanroom.prepare import keying, prepare_partner\n"
        "keying.PARALLEL_MIN_ROWS = 4\n"
        "partners, key, raw, out, salt = sys.argv[1:]\n"
        "s = prepare_partner(get_partner(Path(partners), 'northside-dealers'), bytes.fromhex(salt), Path(raw), Path(out),\n"
        "                    read_signing_key(Path(key)), workers=2)\n"
        "print(s.workers)\n"
    )
    args = [str(workspace.partners_dir), str(workspace.keys[NS]), str(workspace.raw), str(tmp_path / "piped"), workspace.salt.hex()]
    done = subprocess.run([sys.executable, "-", *args], input=script, capture_output=True, text=True, cwd=repo, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    if (os.cpu_count() or 1) > 1:
        assert done.stdout.strip() == "1", "the helpers should have failed and the run gone on in one process"
        assert "BrokenProcessPool" not in done.stderr
    _prepare(workspace, NS, tmp_path / "one", workers=1)
    for name in get_partner(workspace.partners_dir, NS).datasets:
        assert _read(tmp_path / "piped" / f"{name}.arrow").equals(_read(tmp_path / "one" / f"{name}.arrow"))
