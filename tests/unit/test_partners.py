from __future__ import annotations

from pathlib import Path

import pytest

from cleanroom.crypto import new_signing_key, public_key_text
from cleanroom.errors import ConfigError
from cleanroom.partners import load_partners, set_public_key


def test_shipped_partners_load(repo: Path) -> None:
    partners = load_partners(repo / "partners")
    assert set(partners) == {"aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial"}
    assert {p.role for p in partners.values()} == {"brand", "dealer", "finance"}
    for p in partners.values():
        assert "consent" in p.datasets
        for ds in p.datasets.values():
            assert ds.columns_tagged("join_key") == ["hid"]


def test_malformed_file_names_file_and_key(partners_dir: Path) -> None:
    path = partners_dir / "lakeside-autos.toml"
    path.write_text(path.read_text().replace('price_eur = { type = "int64"', 'price_eur = { type = "integer"'))
    with pytest.raises(ConfigError) as exc:
        load_partners(partners_dir)
    assert exc.value.code == "partner.invalid"
    assert "lakeside-autos.toml" in exc.value.message
    assert "datasets.sales.columns.price_eur.type" in exc.value.message


def test_set_public_key_keeps_comments(partners_dir: Path) -> None:
    text = public_key_text(new_signing_key())
    path = set_public_key(partners_dir, "aurora-motors", "uploader", text)
    assert f'uploader = "{text}"' in path.read_text()
    assert path.read_text().startswith("# Partner definition")
