"""Batch composition: length buckets by default, the original loop's shuffled order for ``*_faithful``."""
from __future__ import annotations

import numpy as np

from data_prep import store as store_mod
from study.train.batches import Batcher
from study.train.presets import PRESETS, preset
from study.train.config import TrainConfig


def test_buckets_sort_within_chunks_and_off_keeps_the_shuffled_order(synthetic_store):
    store = store_mod.load(synthetic_store)
    rows = store.indices("train")
    bucketed = Batcher(store).plan(rows, 4, np.random.default_rng(0))
    plain = Batcher(store, buckets=False).plan(rows, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(plain)) == sorted(rows) == sorted(np.concatenate(bucketed))
    # Unbucketed = the permutation itself, cut in order: exactly what a shuffled DataLoader gives.
    assert np.array_equal(np.concatenate(plain), rows[np.random.default_rng(0).permutation(len(rows))])
    spread = lambda plan: np.mean([np.ptp(store.lengths[b]) for b in plan])  # noqa: E731
    assert spread(bucketed) < spread(plain) / 3  # sorted chunks: similar lengths share a batch


def test_faithful_presets_do_not_sort_by_length():
    faithful = [name for name in PRESETS if name.endswith("_faithful")]
    assert faithful and all(not TrainConfig.from_flat(preset(n)).length_buckets for n in faithful)
    assert TrainConfig.from_flat(preset("lstm_original")).length_buckets
    assert TrainConfig.from_flat({"arch": "cnn", "length_buckets": "false"}).to_flat()["length_buckets"] is False
