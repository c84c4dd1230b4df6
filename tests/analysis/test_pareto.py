"""Pareto fronts against hand-made cases: ties, one trial, one dominating all, NaN and unfinished rows."""
from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from study.analysis import pareto


def frame(rows):
    """rows: (trial_id, val_acc, train_time_s[, status]) -> a minimal trials frame."""
    rows = [r if len(r) == 4 else (*r, "TERMINATED") for r in rows]
    return pd.DataFrame({"trial_id": [r[0] for r in rows], "arch": "cnn",
                         "val_acc": [r[1] for r in rows], "test_acc": [r[1] for r in rows],
                         "train_time_s": [r[2] for r in rows], "status": [r[3] for r in rows]})


def ids(rows, cost="train_time_s"):
    return pareto.front_ids(frame(rows), cost)


def test_trade_off_front_is_sorted_cheapest_first():
    # c is dominated by b (less accurate, dearer); a, b, d trade accuracy for cost
    assert ids([("a", 0.70, 10), ("b", 0.80, 20), ("c", 0.75, 30), ("d", 0.85, 100)]) == ["a", "b", "d"]


def test_single_trial_is_its_own_front():
    assert ids([("only", 0.5, 3.0)]) == ["only"]


def test_all_dominated_but_one():
    assert ids([("best", 0.9, 1.0), ("x", 0.8, 2.0), ("y", 0.9, 5.0), ("z", 0.1, 1.0)]) == ["best"]


def test_exact_ties_are_all_on_the_front():
    assert ids([("a", 0.8, 10), ("b", 0.8, 10), ("c", 0.7, 20)]) == ["a", "b"]


def test_equal_accuracy_keeps_only_the_cheapest_and_equal_cost_the_most_accurate():
    assert ids([("cheap", 0.8, 10), ("dear", 0.8, 11)]) == ["cheap"]
    assert ids([("good", 0.8, 10), ("bad", 0.7, 10)]) == ["good"]


def test_nan_metrics_and_unfinished_trials_are_excluded():
    rows = [("ok", 0.7, 10), ("nan_acc", np.nan, 1), ("nan_cost", 0.99, np.nan), ("inf", 0.99, np.inf),
            ("zero", 0.99, 0.0), ("running", 0.99, 1, "RUNNING"), ("error", 0.99, 1, "ERROR")]
    assert ids(rows) == ["ok"]


def test_empty_and_missing_cost_column():
    assert ids([]) == []
    assert ids([("a", 0.7, 10)], cost="params_no_embedding") == []


def test_non_dominated_matches_brute_force():
    rng = np.random.default_rng(0)
    acc, cost = rng.integers(0, 6, 60) / 10, rng.integers(1, 6, 60).astype(float)   # many ties
    mask = pareto.non_dominated(acc, cost)
    for i in range(60):
        dominated = any(acc[j] >= acc[i] and cost[j] <= cost[i] and (acc[j] > acc[i] or cost[j] < cost[i])
                        for j in range(60))
        assert mask[i] == (not dominated)


def test_derived_cost_and_all_fronts():
    f = frame([("fast", 0.7, 10), ("slow", 0.8, 100)])
    f["samples_per_s"] = [2000.0, 0.0]          # zero throughput -> no cost, not a division error
    f = pareto.with_derived_costs(f)
    assert f["train_s_per_1k_samples"].iloc[0] == 0.5 and np.isnan(f["train_s_per_1k_samples"].iloc[1])
    fronts = pareto.all_fronts(f)
    assert fronts == {"train_time_s": ["fast", "slow"], "train_s_per_1k_samples": ["fast"],
                      "batch_ms_per_review": []}


def test_describe_front_in_words():
    f = frame([("t1", 0.82, 120.0), ("t2", 0.80, 10.0), ("t3", 0.5, 500.0)])
    f["arch"] = ["cnn", "fasttext", "lstm"]
    lines = pareto.describe_front(f, "train_time_s")
    assert lines[0].startswith("most accurate: cnn trial t1")
    assert "for 2.0 points less val_acc" in lines[1] and "fasttext trial t2 is 12x cheaper" in lines[1]
    assert lines[2].startswith("lstm is not on this front")


def test_describe_front_names_tied_trials_together_and_flags_collapsed():
    f = frame([("good", 0.8, 100.0), ("c1", 0.34, 1.0), ("c2", 0.34, 1.0)])
    f["arch"] = ["cnn", "fasttext", "fasttext"]
    f["collapsed"] = [False, True, True]
    lines = pareto.describe_front(f, "train_time_s")
    assert len(lines) == 2
    assert "fasttext trials c1, c2 (tied) (collapsed: one class) are 100x cheaper" in lines[1]


def test_fronts_start_at_the_constant_predictor():
    # 0.50 is the majority class's share: "at" it is not above it; 0.51 is, and is the cheapest
    f = pareto.mark_constant(frame([("const", 0.50, 1.0), ("below", 0.40, 0.5), ("above", 0.51, 2.0),
                                    ("best", 0.80, 50.0)]), 0.50)
    assert f.set_index("trial_id")["below_constant"].to_dict() == {"const": True, "below": True, "above": False,
                                                                   "best": False}
    assert pareto.front_ids(f, "train_time_s") == ["above", "best"]
    assert "never on a front" in pareto.describe_front(f, "train_time_s")[-1]
    assert not pareto.mark_constant(f, float("nan"))["below_constant"].any()   # unknown: nothing marked


def test_prices_follow_the_trials_resources():
    f = frame([("a", 0.7, 3600.0)])
    f["infer_reviews_per_s"] = [1000.0]
    assert pareto.with_prices(f, None, 1, 0) is f
    priced = pareto.with_prices(f, {"cpu": 0.05, "gpu": 2.0}, cpus=4, gpus=0.5)
    hourly = 4 * 0.05 + 0.5 * 2.0
    assert priced["train_cost"].item() == pytest.approx(hourly)
    assert priced["cost_per_1m_reviews"].item() == pytest.approx(1000 / 3600 * hourly)   # 1000 s per 1M


def test_front_points_carry_runs_and_intervals():
    f = frame([("a", 0.7, 10.0), ("b", 0.8, 20.0)])
    f["n_runs"], f["val_acc_ci95"], f["test_acc_ci95"] = [3, 1], [0.02, 0.05], [0.03, 0.04]
    points = pareto.front_points(f, "train_time_s")
    assert points[0] == {"trial_id": "a", "arch": "cnn", "train_time_s": 10.0, "n_runs": 3, "val_acc_mean": 0.7,
                         "val_acc_ci95": 0.02, "test_acc_mean": 0.7, "test_acc_ci95": 0.03}
