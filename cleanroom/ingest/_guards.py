"""Guards that protect a collaboration from a partner's honest mistakes, not from an attacker.

Both read only what the uploader signed, so nobody else can change their verdict:

- **Salt fingerprint.** ``prepare`` writes the public fingerprint of the salt it keyed with into
  the manifest. A file keyed with another salt than the other partners' passes every other check
  (its hids are well-formed) but would silently never join: its persons would all look new. The
  collaboration's fingerprint is the one of the first accepted upload that carried one (trust on
  first use), recorded in ``salt-fingerprint.json`` beside the store's database and bound to the
  store's id, so a re-created store starts afresh. A manifest without the field (written by a
  prepare older than the field) is accepted with a warning in the audit log: the fingerprint is
  the uploader's own declaration, a safety net rather than a security control, and refusing
  would strand every upload prepared before it existed.
- **Shrink guard.** A new version that is empty, or has fewer than ``1 - max_shrink`` of the
  active version's rows, usually means a truncated export or a wrong filter, and swapping it in
  would quietly erase most of the dataset. It is refused unless the manifest says
  ``allow_shrink`` (``cleanroom prepare --allow-shrink``).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cleanroom.errors import ConfigError, UploadError
from cleanroom.manifest import Manifest
from cleanroom.store import Store

DEFAULT_MAX_SHRINK = 0.5
SALT_RECORD_FILE = "salt-fingerprint.json"
SHOWN = 6  # hex characters of a fingerprint shown in messages

_SALT_LOCK = threading.Lock()  # one store instance per process (docs/decisions/0002): a thread lock suffices


def check_salt_fingerprint(expected: str | None, manifest: Manifest, path: Path) -> str | None:
    """Refuse a manifest keyed with another salt than ``expected``; a warning when it names none.

    ``expected`` is the collaboration's fingerprint, None while no upload has recorded one.
    """
    got = manifest.salt_fingerprint
    if got is None:
        return "the manifest has no salt_fingerprint (written by an older prepare): its salt was not checked; re-run cleanroom prepare"
    if expected is not None and got != expected:
        raise UploadError(
            "upload.salt_mismatch",
            f"{path}: the file was keyed with a salt whose fingerprint starts {got[:SHOWN]}, but the collaboration's starts "
            f"{expected[:SHOWN]} (set by the first accepted upload): none of its hids would match the other partners'. "
            "Re-run cleanroom prepare with the collaboration salt (compare fingerprints with the other partners)",
            path=str(path),
            fingerprint=got[:SHOWN],
            expected=expected[:SHOWN],
        )
    return None


def check_shrink(active_rows: int | None, manifest: Manifest, qualified: str, path: Path, *, max_shrink: float = DEFAULT_MAX_SHRINK) -> None:
    """Refuse an empty upload, or one below ``(1 - max_shrink)`` of the active rows, unless the manifest allows it."""
    if not 0 <= max_shrink <= 1:
        raise ConfigError("config.invalid", f"max_shrink must be between 0 and 1, got {max_shrink}")
    new = manifest.row_count
    if manifest.allow_shrink:
        return
    hint = "if that is intended, prepare it again with `cleanroom prepare --allow-shrink`"
    if new == 0:
        had = f"the active version has {active_rows:,} rows" if active_rows is not None else "nothing was uploaded before"
        raise UploadError(
            "upload.shrinks_dataset", f"{path}: {qualified}: the upload has 0 rows ({had}); {hint}",
            path=str(path), dataset=qualified, old_rows=active_rows, new_rows=0,
        )
    if active_rows and new < active_rows * (1 - max_shrink):
        raise UploadError(
            "upload.shrinks_dataset",
            f"{path}: {qualified} would shrink from {active_rows:,} to {new:,} rows ({1 - new / active_rows:.0%} fewer; more than "
            f"{max_shrink:.0%} is refused as a likely truncated export); {hint}",
            path=str(path), dataset=qualified, old_rows=active_rows, new_rows=new,
        )


# --- the collaboration's fingerprint, trust on first use ---------------------------------------


def salt_record_path(store: Store) -> Path:
    return store.directory / SALT_RECORD_FILE


def collaboration_fingerprint(store: Store) -> str | None:
    """The fingerprint recorded for this store, or None (never recorded, or recorded for a store since re-created)."""
    try:
        record = json.loads(salt_record_path(store).read_text())
    except FileNotFoundError:
        return None
    if record.get("store_id") != store.store_id:
        return None
    return str(record["salt_fingerprint"])


@contextlib.contextmanager
def salt_claimed(store: Store, manifest: Manifest, path: Path) -> Iterator[None]:
    """Around the publishing step: check again under a lock and record the fingerprint if it is the first.

    When the step fails, a fingerprint recorded here is removed again: only an accepted upload sets it.
    """
    with _SALT_LOCK:
        expected = collaboration_fingerprint(store)
        check_salt_fingerprint(expected, manifest, path)
        recorded = expected is None and manifest.salt_fingerprint is not None
        if recorded:
            _write_record(store, manifest)
        try:
            yield
        except BaseException:
            if recorded:
                salt_record_path(store).unlink(missing_ok=True)
            raise


def _write_record(store: Store, manifest: Manifest) -> None:
    record = {
        "store_id": store.store_id,
        "salt_fingerprint": manifest.salt_fingerprint,
        "first_upload": {"partner": manifest.partner, "dataset": manifest.dataset, "nonce": manifest.nonce},
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    final = salt_record_path(store)
    temp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, final)


__all__ = [
    "DEFAULT_MAX_SHRINK",
    "SALT_RECORD_FILE",
    "check_salt_fingerprint",
    "check_shrink",
    "collaboration_fingerprint",
    "salt_claimed",
    "salt_record_path",
]
