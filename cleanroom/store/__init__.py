"""The encrypted store: one DuckDB database per deployment, encrypted at rest by DuckDB itself.

The only module that opens the database. Ingest publishes validated uploads through
:meth:`Store.publish` (one atomic swap; :meth:`Store.rollback` makes a retained earlier version
active again); the engine reads through :meth:`Store.reader` (a cursor
holding only entitled TEMP VIEWs, optionally over consented rows only). See docs/explanation/storage.md.
"""

from __future__ import annotations

from cleanroom.store._store import (
    DB_FILE,
    RETAINED_VERSIONS,
    DatasetVersion,
    Published,
    Rekey,
    Seen,
    Store,
    StoredVersion,
    VersionMeta,
    ViewSource,
    replay_message,
)

__all__ = [
    "DB_FILE", "RETAINED_VERSIONS", "DatasetVersion", "Published", "Rekey", "Seen", "Store", "StoredVersion", "VersionMeta", "ViewSource",
    "replay_message",
]
