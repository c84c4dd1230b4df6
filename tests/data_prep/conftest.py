"""Fixtures for data_prep tests: real review texts from the bundled IMDB CSV, written out as the tests need
them (Yelp JSON lines, CSV/TSV/JSONL/Parquet tables), a helper that builds a tiny store in-process, and
one that runs the real CLI in a fresh process."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from data_prep.build import BuildParams, build
from data_prep.sources import HTML_TAG, imdb_csv_path

# Small but real: 16-d vectors, 100 tokens per stored review, one word2vec thread (deterministic).
FAST = dict(vector_size=16, max_len=100, workers=1, w2v_epochs=2)


@pytest.fixture(scope="session")
def imdb_reviews() -> pd.DataFrame:
    """300 IMDB reviews (150 negative, 150 positive) with HTML stripped: columns text, label (0/1)."""
    frame = pd.read_csv(imdb_csv_path())
    frame = frame[frame["source"] == "imdb"]
    parts = [frame[frame["label"] == c].iloc[:150] for c in (0, 1)]
    out = pd.concat(parts, ignore_index=True)[["text", "label"]]
    out["text"] = out["text"].str.replace(HTML_TAG, " ", regex=True)
    return out.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _yelp_records(reviews: pd.DataFrame) -> list[dict]:
    """Yelp-shaped records: negative reviews get 1-2 stars, positive 4-5, every third one 3 (neutral)."""
    records = []
    for i, (text, label) in enumerate(zip(reviews["text"], reviews["label"])):
        stars = 3 if i % 3 == 0 else (1 + i % 2 if label == 0 else 4 + i % 2)
        records.append({"review_id": f"r{i:05d}", "user_id": f"u{i % 17}", "business_id": f"b{i % 5}",
                        "stars": stars, "useful": i % 4, "text": text, "date": "2019-01-01 12:00:00"})
    return records


@pytest.fixture(scope="session")
def yelp_records(imdb_reviews) -> list[dict]:
    return _yelp_records(imdb_reviews)


@pytest.fixture
def yelp_file(tmp_path, yelp_records):
    path = tmp_path / "review.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in yelp_records))
    return path


@pytest.fixture(scope="session")
def review_csv(tmp_path_factory, imdb_reviews) -> str:
    """A CSV table with string labels (negative/positive) in columns review, sentiment."""
    path = tmp_path_factory.mktemp("tables") / "reviews.csv"
    pd.DataFrame({"review": imdb_reviews["text"],
                  "sentiment": np.where(imdb_reviews["label"] == 1, "positive", "negative")}).to_csv(path, index=False)
    return str(path)


def _build_small(out, **overrides) -> tuple[dict, bool]:
    params = {**FAST, **overrides}
    return build(BuildParams(out=str(out), **params), log=lambda _m: None)


@pytest.fixture(scope="session")
def build_small():
    """build_small(out, **params) -> (manifest, reused): an in-process build with tiny word2vec settings."""
    return _build_small


@pytest.fixture(scope="session")
def run_cli():
    """run_cli(*args) -> CompletedProcess of ``python -m data_prep ARGS`` (text output captured)."""
    def run(*args, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "data_prep", *map(str, args)], capture_output=True,
                              text=True, timeout=120, cwd=cwd)
    return run
