"""Fixtures of the diagnosis tests."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def imdb_store(tmp_path_factory) -> str:
    """A tiny real IMDB store (120 reviews, 16-d word2vec, at most 100 tokens)."""
    out = tmp_path_factory.mktemp("diag") / "imdb60"
    subprocess.run([sys.executable, "-m", "data_prep", "build", "--source", "imdb", "--per-class", "60",
                    "--vector-size", "16", "--max-len", "100", "--out", str(out)], check=True, capture_output=True)
    return str(out)
