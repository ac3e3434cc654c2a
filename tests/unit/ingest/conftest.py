"""Fixtures for ingest tests: a real encrypted store, a fresh uploader key registered in a private
copy of partners/ (as ``cleanroom keys signing`` would), and a builder of signed uploads.
Nothing here mocks a cleanroom component."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from _uploads import FINGERPRINT, PARTNER, make_table, write_upload
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.crypto import new_secret, new_signing_key, public_key_text
from cleanroom.ingest import UploadPair
from cleanroom.partners import get_partner, set_public_key
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store


@pytest.fixture()
def gateway_secrets() -> GatewaySecrets:
    return GatewaySecrets(pepper=new_secret(), db_key=new_secret())


@pytest.fixture()
def uploader_key(partners_dir: Path) -> Ed25519PrivateKey:
    key = new_signing_key()
    set_public_key(partners_dir, PARTNER, "uploader", public_key_text(key))
    return key


@pytest.fixture()
def store(tmp_path: Path, gateway_secrets: GatewaySecrets) -> Iterator[Store]:
    with Store.open(tmp_path / "store", gateway_secrets, memory_limit="512MB") as opened:
        yield opened


@pytest.fixture()
def build(tmp_path: Path, partners_dir: Path, uploader_key: Ed25519PrivateKey) -> Callable[..., UploadPair]:
    """``build(dataset, rows=..., table=..., key=..., name=..., fingerprint=..., allow_shrink=...)`` -> a signed upload in tmp_path."""
    counter = iter(range(10_000))

    def _build(
        dataset_name: str = "leads", *, rows: int = 200, table: pa.Table | None = None, key: Ed25519PrivateKey | None = None, name: str | None = None,
        fingerprint: str | None = FINGERPRINT, allow_shrink: bool = False,
    ) -> UploadPair:
        dataset = get_partner(partners_dir, PARTNER).dataset(dataset_name)
        data = table if table is not None else make_table(dataset, rows)
        return write_upload(
            tmp_path / f"up{next(counter)}", PARTNER, dataset_name, dataset, data, key or uploader_key, name=name,
            fingerprint=fingerprint, allow_shrink=allow_shrink,
        )

    return _build
