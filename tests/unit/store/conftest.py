"""Fixtures for store tests: fresh gateway secrets, an open store, and a publisher of small
peppered tables (what ingest hands the store after validation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from _store_data import leads_table, meta, rekey

from cleanroom.crypto import new_secret
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Published, Store


@pytest.fixture()
def gateway_secrets() -> GatewaySecrets:
    return GatewaySecrets(pepper=new_secret(), db_key=new_secret())


@pytest.fixture()
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture()
def store(store_dir: Path, gateway_secrets: GatewaySecrets) -> Iterator[Store]:
    with Store.open(store_dir, gateway_secrets, memory_limit="512MB") as opened:
        yield opened


@pytest.fixture()
def publish(store: Store) -> Callable[..., Published]:
    def _publish(table: pa.Table | None = None, **kwargs: str) -> Published:
        return store.publish(table if table is not None else leads_table(50), meta(**kwargs), rekey(store))

    return _publish
