"""Atomic output: prepared Arrow files and their signed manifests, never half of either.

Two phases. *Stage*: each dataset's Arrow file and manifest are written to hidden temp files in
the output folder and fsync'ed; the manifest hashes the staged bytes and names the final file.
*Commit*, only once every dataset staged without error: per dataset, remove the old manifest,
rename the Arrow file into place, rename the manifest into place. So a bad value in the third
dataset leaves the previous outputs untouched, and even a crash mid-commit leaves each dataset
as a matching (file, manifest) pair or a file without a manifest, which ingest refuses: never a
valid manifest next to a torn or stale file.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.manifest import Manifest, manifest_path

ARROW_SUFFIX = ".arrow"


class Staged(NamedTuple):
    """One dataset's output, written and signed but not yet visible under its final names."""

    arrow_temp: Path
    arrow: Path
    manifest_temp: Path
    manifest_file: Path
    manifest: Manifest


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_arrow(table: pa.Table, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    _fsync(path)


def _write_text(text: str, path: Path) -> None:
    path.write_text(text)
    _fsync(path)


class Signing(NamedTuple):
    """What every manifest of one prepare run is signed with and vouches for besides the file."""

    key: Ed25519PrivateKey
    salt_fingerprint: str
    allow_shrink: bool = False


def stage_prepared(table: pa.Table, out_dir: Path, partner: str, dataset: str, schema_hash: str, signing: Signing) -> Staged:
    """Write ``<dataset>.arrow`` and its signed manifest to temp files; nothing visible changes yet."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arrow = out_dir / f"{dataset}{ARROW_SUFFIX}"
    arrow_temp, manifest_temp = _temp_for(arrow), _temp_for(manifest_path(arrow))
    try:
        _write_arrow(table, arrow_temp)
        unsigned = Manifest.new(
            partner, dataset, arrow_temp, schema_hash, table.num_rows, salt_fingerprint=signing.salt_fingerprint, allow_shrink=signing.allow_shrink
        )
        manifest = unsigned.model_copy(update={"file": arrow.name}).signed_by(signing.key)
        _write_text(manifest.to_text(), manifest_temp)
    except BaseException:
        _remove(arrow_temp, manifest_temp)
        raise
    return Staged(arrow_temp, arrow, manifest_temp, manifest_path(arrow), manifest)


def commit(staged: list[Staged]) -> None:
    """Make staged outputs visible, dataset by dataset, in the crash-safe order."""
    for s in staged:
        s.manifest_file.unlink(missing_ok=True)
        os.replace(s.arrow_temp, s.arrow)
        os.replace(s.manifest_temp, s.manifest_file)
    for folder in {s.arrow.parent for s in staged}:
        _fsync(folder)


def discard(staged: Staged) -> None:
    """Remove a dataset's temp files (after a failure elsewhere); the visible outputs stay as they were."""
    _remove(staged.arrow_temp, staged.manifest_temp)


def _remove(*temps: Path) -> None:
    for temp in temps:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_json(data: Any, final: Path) -> None:
    """Write a small JSON file atomically (temp, fsync, rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_for(final)
    try:
        _write_text(json.dumps(data, indent=2) + "\n", temp)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)


__all__ = ["ARROW_SUFFIX", "Signing", "Staged", "commit", "discard", "stage_prepared", "write_json"]
