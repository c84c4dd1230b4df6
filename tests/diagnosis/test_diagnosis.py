"""The LSTM diagnosis's probes and plan on tiny real data (the verdict: test_verdict.py; the CLI: test_cli.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from data_prep import store as store_mod
from study.diagnosis import plan
from study.diagnosis import probes, runs
from study.train.config import TrainConfig
from study.train.trainer import Session, train


def baseline(**changes) -> TrainConfig:
    return TrainConfig.from_flat(plan.derive(plan.baseline_flat(8, 1, 100, 1, 16, 0), changes))


def session_for(store, **changes) -> Session:
    torch.manual_seed(0)
    return Session(baseline(**changes), store, torch.device("cpu"))


def test_prediction_histogram_and_entropy():
    one = probes.prediction_histogram(np.zeros(10, np.int64), 2)
    assert one["pred_hist"] == [10, 0] and one["majority_share"] == 1.0 and one["pred_entropy_bits"] == 0.0
    even = probes.prediction_histogram(np.array([0, 1, 2] * 4), 3)
    assert even["majority_share"] == pytest.approx(1 / 3)
    assert even["pred_entropy_bits"] == pytest.approx(math.log2(3)) == pytest.approx(even["max_entropy_bits"])


def test_logit_spread_tells_constant_from_input_dependent_outputs():
    constant = probes.logit_spread(np.tile([[0.2, -0.1]], (50, 1)))
    assert constant["spread_ratio"] == pytest.approx(0.0) and constant["prob_std"] == pytest.approx(0.0)
    varied = probes.logit_spread(np.random.default_rng(0).normal(0, 1, size=(50, 2)))
    assert varied["spread_ratio"] > 0.5 and varied["prob_std"] > 0.05
    labels = np.array([0, 0, 1, 1])
    assert probes.label_auc(np.zeros((4, 2)), labels) == 0.5  # constant output: unrelated to the label
    assert probes.label_auc(np.array([[1, 0], [0.5, 0], [0, 1], [0, 2.0]]), labels) == 1.0
    assert probes.logit_spread(np.array([[0, 2.0], [0, 1], [1, 0], [2, 0]]), labels)["label_auc"] == 0.0


def test_readout_padding_counts_pad_steps_from_the_store_lengths(imdb_store):
    store = store_mod.load(imdb_store)
    test = store.indices("test")
    lengths = np.minimum(store.lengths[test], 100)
    width = int(np.minimum(store.lengths, 100).max())  # pad_to_longest: every batch this wide
    post = probes.readout_padding(session_for(store), test)
    assert post["mean_width"] == width
    assert post["readout_on_pad_share"] == pytest.approx(float((lengths < width).mean()))
    assert post["mean_pad_steps_before_readout"] == pytest.approx(float((width - lengths).mean()))
    assert post["readout_on_pad_share"] > 0  # some IMDB reviews are shorter than 100 tokens
    for changes in ({"padding": "pre"}, {"readout": "final_state"}, {"readout": "max"}):
        fixed = probes.readout_padding(session_for(store, **changes), test)
        assert fixed["readout_on_pad_share"] == 0.0 and fixed["mean_pad_steps_before_readout"] == 0.0
    assert list(probes.readout_positions(np.array([3, 10, 7]), 10, "post", "last_step")) == [7, 0, 3]


def test_gradient_reaches_pads_not_words_when_reading_after_the_pads(imdb_store):
    store = store_mod.load(imdb_store)
    rows = store.indices("test")[:24]
    post = probes.gradient_by_position(session_for(store), rows)
    assert post["pad_step_count"] > 0 and post["grad_pad_steps"] > 0
    assert post["grad_first_steps"] < post["grad_last_real_steps"]  # vanishes on the way back to the text
    assert post["embedding_table_grad_norm"] > 0
    exact = probes.gradient_by_position(session_for(store, readout="final_state"), rows)
    assert exact["grad_pad_steps"] == 0.0  # pads after the true end cannot affect the output
    assert exact["grad_last_real_steps"] > 0
    pre = probes.gradient_by_position(session_for(store, padding="pre"), rows)
    assert pre["grad_last_real_steps"] > 0 and pre["grad_last_real_steps"] > post["grad_last_real_steps"]


def test_loss_curve_against_ln_k(imdb_store):
    store = store_mod.load(imdb_store)
    history = train(baseline(epochs=2), store, threads=1)
    curve = probes.loss_curve(history, 2, softmax_loss=True)
    assert curve["train_loss"] == [m["train_loss"] for m in history]
    assert curve["ln_k"] == pytest.approx(math.log(2))
    assert curve["loss_floor"] == pytest.approx(math.log(1 + 1 / math.e))  # 0.313: softmax before CE
    assert curve["loss_vs_ln_k"] == pytest.approx(history[-1]["train_loss"] / math.log(2))
    stuck = probes.loss_curve([{"train_loss": 0.6931}, {"train_loss": 0.6929}], 2, softmax_loss=True)
    assert not stuck["moved_below_ln_k"]
    assert probes.loss_curve([{"train_loss": 0.4}], 2, softmax_loss=False)["moved_below_ln_k"]


def test_subsample_is_stratified_and_keeps_the_store_intact(synthetic_store):
    store = store_mod.load(synthetic_store)
    half = plan.subsample(store, len(store.indices("train")) // 2, seed=0, test_cap=30)
    train_rows = half.indices("train")
    assert len(train_rows) == pytest.approx(len(store.indices("train")) / 2, abs=store.num_classes)
    assert set(np.bincount(store.labels[train_rows])) == {len(train_rows) // store.num_classes}
    assert len(half.indices("test")) == 30 and len(store.indices("test")) == 54




def test_conditions_run_comparisons_first_and_alternative_causes_before_extras():
    kinds = [c.kind for c in plan.conditions()]
    assert kinds[:4] == [plan.BASELINE] + [plan.COMPARISON] * 3  # the bar for "recovered" comes first
    assert kinds.index(plan.EXTRA) > max(i for i, k in enumerate(kinds) if k == plan.ONE_FACTOR)
    factors = [c.factor for c in plan.ONE_FACTOR_CHANGES]
    assert factors[:3] == [plan.PADDING] * 3 and plan.PADDING not in factors[3:]
    assert [c.kind for c in plan.conditions(baseline_only=True)] == [plan.BASELINE] + [plan.COMPARISON] * 3
    follow = plan.follow_up(plan.ONE_FACTOR_CHANGES[0])
    assert follow.kind == plan.FOLLOW_UP_KIND and follow.name.startswith("follow-up:")
    assert follow.changes == {"readout": "final_state", "softmax_loss": False, "grad_clip": 1.0}
    assert plan.baseline_flat(256, 2, 400, 3, 16)["num_layers"] == 2  # the size is the caller's


def test_sizing_picks_the_largest_rung_that_fits_and_shrinks_with_the_budget():
    ladder = plan.row_ladder(3150)
    assert ladder[0] == plan.MIN_TRAIN_ROWS and ladder[-1] == 3150 and ladder == sorted(ladder)
    per_sample = [0.008] * 12  # 12 conditions at 8 ms per trained row
    args = dict(runs_per_condition=3, epochs=3, workers=2, full_train=3150, valid_rows=350, test_rows=1500)
    rows, wall, _ = plan.size_runs(600, per_sample, **args)
    assert rows in ladder and wall <= plan.BUDGET_SHARE * 600
    bigger = ladder[ladder.index(rows) + 1]
    assert plan.size_runs(600, per_sample, **{**args, "full_train": bigger})[0] == bigger or \
        wall < plan.BUDGET_SHARE * 600
    assert plan.size_runs(150, per_sample, **args)[0] < rows  # a smaller budget, fewer rows
    assert plan.size_runs(600, per_sample, **{**args, "workers": 8})[0] > rows  # a cluster, more rows
    assert plan.size_runs(1e6, per_sample, **args)[0] == 3150  # everything fits: all rows


def test_sizing_says_when_step_time_noise_could_move_it_by_a_rung():
    args = dict(runs_per_condition=3, epochs=3, workers=2, full_train=3150, valid_rows=350, test_rows=1500)
    per_sample = [0.008] * 12
    rows, wall, _ = plan.size_runs(600, per_sample, **args)
    # A budget that this rung fills exactly, then one 10% roomier: only the first is a close call.
    just = wall / plan.BUDGET_SHARE
    assert plan.size_runs(just, per_sample, **args) == (rows, wall, True)
    assert plan.size_runs(just * 1.1, per_sample, **args) == (rows, wall, False)
    # A budget just short of the next rung: it does not fit, but 5% faster steps would make it fit.
    above = plan.row_ladder(3150)[plan.row_ladder(3150).index(rows) + 1]
    wall_above = plan.size_runs(1e6, per_sample, **{**args, "full_train": above}).wall_s
    assert plan.size_runs(wall_above / plan.BUDGET_SHARE / 1.02, per_sample, **args) == (rows, wall, True)


def test_a_run_is_judged_at_its_best_validation_epoch(synthetic_store):
    store = store_mod.load(synthetic_store)
    cfg = TrainConfig.from_flat({"arch": "fasttext", "epochs": 4, "lr": 0.05, "batch_size": 8, "seed": 1})
    run = runs.train_run(cfg, store)
    vals = [p["val_acc"] for p in run["curve"]]
    assert run["best_epoch"] == 1 + vals.index(max(vals)) and run["val_acc"] == max(vals)
    assert run["last_val_acc"] == vals[-1] and len(run["curve"]) == 4
    # Training only up to the best epoch gives the same model: its test accuracy is the one reported.
    again = runs.train_run(cfg.replace(epochs=run["best_epoch"]), store)
    assert again["test_acc"] == run["test_acc"] and again["curve"] == run["curve"][:run["best_epoch"]]
