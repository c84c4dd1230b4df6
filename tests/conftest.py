"""Shared fixtures: small stores made by the tests themselves (real Parquet, real loader)."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep import store as store_mod


def make_synthetic_store(path, *, per_class=60, num_classes=3, vocab_size=200, dim=16, seed=0,
                         min_len=3, max_len=40) -> str:
    """A learnable store: each class prefers its own block of words; lengths vary widely."""
    rng = np.random.default_rng(seed)
    class_names = [f"class{c}" for c in range(num_classes)]
    words = vocab_size - 2
    block = words // num_classes
    rows, labels, splits = [], [], []
    split_cycle = ["train"] * 6 + ["valid"] + ["test"] * 3
    for label in range(num_classes):
        for i in range(per_class):
            length = int(rng.integers(min_len, max_len + 1))
            own = rng.integers(2 + label * block, 2 + (label + 1) * block, size=length)
            noise = rng.integers(2, vocab_size, size=length)
            ids = np.where(rng.random(length) < 0.5, own, noise).astype(np.int32)
            rows.append(ids)
            labels.append(label)
            splits.append(split_cycle[i % len(split_cycle)])
    order = rng.permutation(len(rows))
    sequences = store_mod.sequences_table([rows[i] for i in order], np.array(labels)[order],
                                          np.array(splits)[order])
    vocab = [store_mod.PAD_TOKEN, store_mod.UNK_TOKEN] + [f"w{i}" for i in range(words)]
    vectors = rng.normal(0, 0.3, size=(vocab_size, dim)).astype(np.float32)
    vectors[0] = 0.0
    store_mod.write_store(str(path), sequences=sequences, vocab=vocab, vectors=vectors,
                          class_names=class_names, source={"name": "synthetic", "seed": seed},
                          params={"per_class": per_class, "dim": dim}, params_hash=f"synthetic-{seed}")
    return str(path)


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory) -> str:
    return make_synthetic_store(tmp_path_factory.mktemp("stores") / "synthetic")
