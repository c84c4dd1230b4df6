"""The ``embedding`` key: a trial and ``study train`` load the kind their config names, from a real store
holding two kinds; a kind the store lacks is a one-line error."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_prep import store as store_mod
from helpers import make_synthetic_store
from study.search.trial import cached_store
from study.train.config import TrainConfig


@pytest.fixture(scope="module")
def two_kinds(tmp_path_factory) -> str:
    """The synthetic store's sequences with a second, different kind of vectors next to its default one."""
    one = store_mod.load(make_synthetic_store(tmp_path_factory.mktemp("one") / "s"))
    rows = [one.tokens[one.offsets[i]:one.offsets[i + 1]] for i in range(len(one.labels))]
    sequences = store_mod.sequences_table(rows, one.labels, np.array(store_mod.SPLITS)[one.split_codes])
    vocab = pq.read_table(f"{one.uri}/embeddings.parquet", columns=["token"]).column("token").to_pylist()
    vectors = {"word2vec": one.embeddings, "random": np.full_like(one.embeddings, 0.01)}
    out = str(tmp_path_factory.mktemp("two") / "s")
    store_mod.write_store(out, sequences=sequences, vocab=vocab, vectors=vectors,
                          class_names=one.class_names, source={"name": "synthetic"}, params={},
                          params_hash="two-kinds")
    return out


def test_config_key_names_a_kind_or_the_default():
    assert TrainConfig.from_flat({"arch": "fasttext", "embedding": "random"}).embedding_kind == "random"
    assert TrainConfig.from_flat({"arch": "fasttext"}).embedding_kind is None  # the store's default kind
    with pytest.raises(ValueError, match="embedding"):
        TrainConfig.from_flat({"embedding": "Word2Vec"})


def test_trial_cache_keeps_one_store_per_kind(two_kinds):
    content_hash = store_mod.read_manifest(two_kinds)["content_hash"]
    default = cached_store(two_kinds, content_hash)
    random = cached_store(two_kinds, content_hash, "random")
    assert (default.embedding_kind, random.embedding_kind) == ("word2vec", "random")
    assert np.allclose(random.embeddings, 0.01) and not np.allclose(default.embeddings, 0.01)
    assert cached_store(two_kinds, content_hash, "random") is random  # loaded once per worker


def test_study_train_honours_the_embedding_key(two_kinds):
    base = [sys.executable, "-m", "study", "train", "--store", two_kinds, "--preset", "fasttext",
            "--epochs", "1", "--threads", "1"]
    done = subprocess.run(base + ["--set", "embedding=random"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["config"]["embedding"] == "random"
    bad = subprocess.run(base + ["--set", "embedding=fasttext"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "fasttext" in bad.stderr and "Traceback" not in bad.stderr
