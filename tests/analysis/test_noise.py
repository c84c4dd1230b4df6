"""Noise: the Wilson interval against a bootstrap over reviews, intervals over runs, configurations of
repeats, and the paired bootstrap on hand-made predictions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.analysis import noise
from study.analysis.table import best_per_arch

SPLITS = noise.Splits(n_val=140, n_test=600, constant_val=0.5, constant_test=0.5, source="test")


def test_wilson_matches_a_bootstrap_over_the_reviews():
    """One run: the interval from the split's size is what resampling its reviews gives."""
    rng = np.random.default_rng(0)
    correct = np.zeros(140)
    correct[:112] = 1                                   # 80% of 140 validation reviews
    boot = correct[rng.integers(0, 140, size=(20000, 140))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert noise.wilson_half(0.8, 140) == pytest.approx((hi - lo) / 2, abs=0.006)
    assert noise.wilson_half(0.5, 100) == pytest.approx(0.0962, abs=1e-4)


def test_interval_adds_seed_variance_to_review_sampling():
    mean, half = noise.interval([0.80], 600)
    assert mean == 0.80 and half == pytest.approx(noise.wilson_half(0.80, 600))
    mean, half = noise.interval([0.78, 0.80, 0.82, float("nan")], 600)   # a NaN run is ignored
    assert mean == pytest.approx(0.80)
    seeds = 4.302652729911275 * 0.02 / np.sqrt(3)        # t(0.975, 2) x sd / sqrt(3)
    assert half == pytest.approx(np.hypot(seeds, noise.wilson_half(0.80, 600)))
    assert np.isnan(noise.interval([], 600)[0])


def runs_frame() -> pd.DataFrame:
    """Two configurations with repeats; validation and test orderings disagree between them."""
    rows = [("a", "cnn", "TERMINATED", None, 0.86, 0.70), ("a1", "cnn", "TERMINATED", "a", 0.84, 0.72),
            ("a2", "cnn", "ERROR", "a", 0.10, 0.10),           # a failed repeat counts nowhere
            ("b", "cnn", "TERMINATED", None, 0.83, 0.90), ("b1", "cnn", "TERMINATED", "b", 0.83, 0.88),
            ("c", "lstm", "RUNNING", None, 0.99, 0.99)]
    return pd.DataFrame([{"trial_id": t, "arch": a, "status": s, "repeat_of": r, "val_acc": v, "test_acc": x,
                          "train_time_s": 10.0 + i} for i, (t, a, s, r, v, x) in enumerate(rows)])


def test_configurations_average_finished_runs_and_keep_the_search_trials():
    c = noise.configurations(runs_frame(), SPLITS).set_index("trial_id")
    assert list(c.index) == ["a", "b", "c"]
    assert c.at["a", "n_runs"] == 2 and c.at["a", "run_ids"] == ["a", "a1"]
    assert c.at["a", "val_acc"] == pytest.approx(0.85) and c.at["a", "test_acc"] == pytest.approx(0.71)
    assert c.at["a", "train_time_s"] == pytest.approx(10.5)
    assert c.at["c", "n_runs"] == 0 and c.at["b", "val_acc_ci95"] > noise.wilson_half(0.83, 140) - 1e-9
    # selection is on validation: a (val 0.85) beats b (val 0.83) although b is far better on test
    assert best_per_arch(c.reset_index())["trial_id"].tolist() == ["a"]
    runs = runs_frame().assign(collapsed=[True, False, True, True, True, False])
    c = noise.configurations(runs, SPLITS).set_index("trial_id")["collapsed"]
    assert c.to_dict() == {"a": False, "b": True, "c": False}       # only when every finished run collapsed


def test_paired_bootstrap():
    rng = np.random.default_rng(1)
    same = (rng.random((1, 600)) < 0.8).astype(float)
    assert noise.paired_test(same, same)["p"] == 1.0
    better = same.copy()
    better[0, np.flatnonzero(same[0] == 0)[:60]] = 1     # right on 60 more of the 600 reviews
    result = noise.paired_test(better, same)
    assert result["diff"] == pytest.approx(0.1) and result["p"] < 0.001 and result["lo"] > 0.05
    close = same.copy()
    close[0, np.flatnonzero(same[0] == 0)[:2]] = 1       # 2 reviews in 600: noise
    assert noise.paired_test(close, same)["p"] > 0.2
    assert noise.within_noise(0.41) is True and noise.within_noise(0.01) is False


def test_compare_uses_every_run_on_the_same_reviews():
    c = noise.configurations(runs_frame(), SPLITS)
    labels = np.zeros(600, np.int64)
    rows = np.arange(600)

    def pred(right):
        return {"test_rows": rows, "test_labels": labels, "test_preds": (np.arange(600) >= right).astype(np.int64)}
    predictions = {"a": pred(420), "a1": pred(432), "b": pred(540), "b1": pred(528)}
    [entry] = noise.compare(c, [("a", "b")], predictions)
    assert entry["diff"] == pytest.approx((0.70 + 0.72) / 2 - (0.90 + 0.88) / 2)
    assert entry["p"] < 0.001 and entry["runs_a"] == 2
    other = dict(predictions, b={**predictions["b"], "test_rows": rows + 1})   # other reviews: no test
    assert noise.compare(c, [("a", "b")], other)[0]["p"] is None
