"""The trainer's costs and its selection: training steps timed alone, test only at a new best validation
accuracy, the trial's own peak memory, serving speed, and the best epoch's predictions beside the checkpoint."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep import store as store_mod
from study.train import metrics as metrics_mod
from study.train import trainer
from study.train.config import TrainConfig
from study.train.trainer import Evaluation, load_checkpoint, save_checkpoint, train

TINY = {"arch": "fasttext", "lr": 0.05, "batch_size": 16, "epochs": 4, "seed": 1}


@pytest.fixture(scope="module")
def store(synthetic_store):
    return store_mod.load(synthetic_store)


def scripted_evaluate(store, val_accs, test_accs, calls):
    """An ``evaluate`` whose accuracy per epoch is scripted, so validation and test orderings disagree."""
    val_rows, test_rows = store.indices("valid"), store.indices("test")

    def fake(session, rows):
        split = "val" if len(rows) == len(val_rows) and (rows == val_rows).all() else "test"
        calls.append(split)
        epoch = calls.count("val")          # test is evaluated after the epoch's validation pass
        acc = (val_accs if split == "val" else test_accs)[epoch - 1]
        labels = store.labels[rows].astype(np.int64)
        right = np.zeros(len(rows), bool)
        right[:round(acc * len(rows))] = True
        preds = np.where(right, labels, (labels + 1) % store.num_classes)
        logits = np.eye(store.num_classes, dtype=np.float32)[preds]
        return Evaluation(0.5, logits, labels, np.asarray(rows, np.int64))
    return fake


def test_val_selects_and_test_is_evaluated_only_at_a_new_best(store, monkeypatch):
    # best validation at epoch 2; the test split is best at epoch 3 and worst at epoch 2
    val_accs, test_accs = [0.5, 0.8, 0.6, 0.8], [0.9, 0.4, 0.95, 0.3]
    calls = []
    monkeypatch.setattr(trainer, "evaluate", scripted_evaluate(store, val_accs, test_accs, calls))
    history = train(TrainConfig.from_flat(TINY), store, device="cpu", threads=1)
    assert calls == ["val", "test", "val", "test", "val", "val"]   # a tie (epoch 4) is no improvement
    n_val, n_test = len(store.indices("valid")), len(store.indices("test"))
    assert [h["val_acc"] for h in history] == [round(v * n_val) / n_val for v in (0.5, 0.8, 0.8, 0.8)]
    assert [h["best_epoch"] for h in history] == [1, 2, 2, 2]
    assert history[-1]["test_acc"] == pytest.approx(round(0.4 * n_test) / n_test)   # not 0.95, not 0.3


def test_costs_are_the_trials_alone(store, tmp_path):
    history = train(TrainConfig.from_flat(TINY), store, device="cpu", threads=1)
    rows = len(store.indices("train"))
    for h in history:
        assert set(metrics_mod.COST_KEYS + metrics_mod.ACCURACY_KEYS + metrics_mod.RUN_KEYS) <= set(h)
        # samples_per_s is the trial's mean training throughput: the two figures multiply to the samples seen
        assert h["train_time_s"] * h["samples_per_s"] == pytest.approx(h["epoch"] * rows)
        assert h["eval_time_s"] > 0 and h["infer_ms_per_review"] > 0 and h["infer_reviews_per_s"] > 0
        assert h["seed"] == 1
    steps = [b["train_time_s"] - a["train_time_s"] for a, b in zip(history, history[1:])]
    evals = [b["eval_time_s"] - a["eval_time_s"] for a, b in zip(history, history[1:])]
    for h, step, ev in zip(history[1:], steps, evals):
        assert h["epoch_time_s"] == pytest.approx(step + ev)


def test_peak_rss_is_the_trials_own(store):
    if not metrics_mod.reset_peak_rss():
        pytest.skip("the platform cannot reset the peak resident memory")
    ballast = np.ones(400 * 1024 * 1024 // 8)   # 400 MB touched before the trial, then freed
    del ballast
    lifetime = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1024
    peak = train(TrainConfig.from_flat({**TINY, "epochs": 1}), store, device="cpu", threads=1)[0]["peak_rss_mb"]
    assert peak < lifetime - 300


def test_best_epoch_predictions_are_saved_beside_the_checkpoint_and_survive_resume(store, tmp_path):
    cfg = TrainConfig.from_flat(TINY)
    states = []
    history = train(cfg, store, device="cpu", threads=1, on_epoch=lambda m, get_state: states.append(get_state()))
    save_checkpoint(states[-1], tmp_path)
    saved = np.load(tmp_path / trainer.PREDICTIONS_FILE, allow_pickle=False)
    assert saved["test_rows"].tolist() == sorted(store.indices("test").tolist())
    assert saved["val_rows"].tolist() == sorted(store.indices("valid").tolist())
    assert (saved["test_preds"] == saved["test_labels"]).mean() == pytest.approx(history[-1]["test_acc"])
    assert (saved["val_preds"] == saved["val_labels"]).mean() == pytest.approx(history[-1]["val_acc"])
    # resumed after epoch 2: the same best epoch, metrics and predictions as the uninterrupted run
    save_checkpoint(states[1], tmp_path / "e2")
    resumed = train(cfg, store, device="cpu", threads=1, resume=load_checkpoint(tmp_path / "e2"),
                    on_epoch=lambda m, get_state: states.append(get_state()))
    keep = set(metrics_mod.ACCURACY_KEYS + metrics_mod.RUN_KEYS)
    assert [{k: h[k] for k in keep} for h in resumed] == [{k: h[k] for k in keep} for h in history]
    assert (states[-1]["predictions"]["test_preds"] == states[3]["predictions"]["test_preds"]).all()
