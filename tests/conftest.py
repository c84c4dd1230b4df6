"""Shared fixtures: small stores made by the tests themselves (real Parquet, real loader)."""
from __future__ import annotations

import pytest

from helpers import build_imdb_store, make_synthetic_store

@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory) -> str:
    return make_synthetic_store(tmp_path_factory.mktemp("stores") / "synthetic")


@pytest.fixture(scope="session")
def imdb_store(tmp_path_factory) -> str:
    """2,000 real IMDB reviews (2 classes), 32-d word2vec trained on their train split."""
    return build_imdb_store(tmp_path_factory.mktemp("stores") / "imdb")
