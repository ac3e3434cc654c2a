"""Same seed, same bytes; another seed, other data."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cleanroom.synth import generate


def _digests(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_writes_the_same_bytes(tmp_path: Path, repo: Path) -> None:
    a = generate(1500, 7, tmp_path / "a", partners_dir=repo / "partners")
    b = generate(1500, 7, tmp_path / "b", partners_dir=repo / "partners")
    assert a.files == b.files
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert len(_digests(tmp_path / "a")) == len(a.files) + 1


def test_another_seed_writes_other_data(tmp_path: Path, repo: Path) -> None:
    generate(1500, 7, tmp_path / "a", partners_dir=repo / "partners")
    generate(1500, 8, tmp_path / "b", partners_dir=repo / "partners")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert all(a[name] != b[name] for name in a)


def test_rerun_into_the_same_folder_replaces_files_without_leftovers(tmp_path: Path, repo: Path) -> None:
    generate(800, 1, tmp_path / "x", partners_dir=repo / "partners")
    first = _digests(tmp_path / "x")
    generate(800, 1, tmp_path / "x", partners_dir=repo / "partners")
    assert _digests(tmp_path / "x") == first
    assert not list((tmp_path / "x").rglob(".*.tmp"))
