"""Balancing and the stratified split: sizes, randomness, reproducibility."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep.labels import TEST, TRAIN, VALID, balance, stratified_split
from data_prep.sources import PrepError

# Class-ordered like the seed's data: 500 of class 0, then 300 of class 1, then 200 of class 2.
CODES = np.repeat([0, 1, 2], [500, 300, 200]).astype(np.int64)


def test_balance_defaults_to_the_smallest_class_and_is_random():
    rows = balance(CODES, None, seed=1)
    assert np.bincount(CODES[rows]).tolist() == [200, 200, 200]
    assert len(np.unique(rows)) == len(rows)
    # Not the first N of each class: class 0's picks spread over its 500 rows.
    assert CODES[rows[CODES[rows] == 0]].size == 200 and rows[CODES[rows] == 0].max() > 300
    # Not class-ordered: the first 60 rows already hold every class.
    assert set(CODES[rows[:60]].tolist()) == {0, 1, 2}


def test_balance_is_seeded():
    assert np.array_equal(balance(CODES, 50, seed=7), balance(CODES, 50, seed=7))
    assert not np.array_equal(balance(CODES, 50, seed=7), balance(CODES, 50, seed=8))


def test_balance_skips_dropped_rows():
    codes = CODES.copy()
    codes[:100] = -1
    assert (codes[balance(codes, 150, seed=0)] >= 0).all()


def test_balance_rejects_more_than_a_class_has():
    with pytest.raises(PrepError, match="larger than class 'c2', which has 200"):
        balance(CODES, 201, seed=0, class_names=["c0", "c1", "c2"])


def test_split_is_stratified_and_seeded():
    rows = balance(CODES, 200, seed=3)
    codes = CODES[rows]
    split = stratified_split(codes, 0.3, 0.1, seed=3)
    for c in range(3):
        per_split = np.bincount(split[codes == c], minlength=3)
        assert per_split[TEST] == 60  # 30% of 200
        assert per_split[VALID] == 14  # 10% of the remaining 140
        assert per_split[TRAIN] == 126
    assert np.array_equal(split, stratified_split(codes, 0.3, 0.1, seed=3))
    assert not np.array_equal(split, stratified_split(codes, 0.3, 0.1, seed=4))


def test_split_rows_are_disjoint_and_cover_everything():
    codes = CODES[balance(CODES, 100, seed=0)]
    split = stratified_split(codes, 0.25, 0.2, seed=0)
    sets = [set(np.flatnonzero(split == s).tolist()) for s in (TRAIN, VALID, TEST)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(sets[0] | sets[1] | sets[2]) == len(codes)


def test_split_too_small_is_an_error():
    with pytest.raises(PrepError, match="split would be empty"):
        stratified_split(np.array([0, 1]), 0.3, 0.1, seed=0)
