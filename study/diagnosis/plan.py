"""The diagnosis's plan: the baseline recipe, the one-factor changes, the comparisons, and the budget.

    base = baseline_flat(hidden_size=64, max_len=400, epochs=3, batch_size=16, seed=0)
    derive(base, {"readout": "final_state"})        # the baseline with one factor changed

Each change has a relative cost (an epoch's time against the baseline's), so the budget can be split
before anything runs: ``plan_epochs`` measures the baseline's step time and picks the epochs per run.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from data_prep import store as store_mod
from study.train.config import TrainConfig
from study.train.trainer import Session

PADDING = "padding/readout"
MIN_EPOCHS, MAX_EPOCHS = 2, 4  # one epoch is too little for the collapse (and the fixes) to show
BUDGET_SHARE = 0.85  # of the budget planned for the core runs; the rest absorbs estimation error
EVAL_COST = 0.35     # an evaluated row costs about a third of a trained one (forward pass only)
MIN_FRACTION = 0.25  # the smallest share of the training rows a run may be cut to

# (change, factor, flat keys changed, cost of an epoch relative to the baseline's). Order = priority.
ABLATIONS = [
    ("readout at the true length (final_state)", PADDING, {"readout": "final_state"}, 1.0),
    ("pre-padding", PADDING, {"padding": "pre"}, 1.0),
    ("max pooling over time", PADDING, {"readout": "max"}, 1.0),
    ("no softmax before the loss", "softmax before the loss", {"softmax_loss": False}, 1.0),
    ("gradient clipping (norm 1.0)", "optimisation", {"grad_clip": 1.0}, 1.0),
    ("lower learning rate (1e-4)", "optimisation", {"lr": 1e-4}, 1.0),
    ("frozen embeddings", "embedding fine-tuning", {"freeze_embeddings": True}, 0.8),
    ("pad each batch to its own longest (length-bucketed)", PADDING, {"pad_to_longest": False}, 0.6),
]
CORE = 4  # the first CORE ablations run before the comparisons and size the epochs
NOT_APPLICABLE = [("shuffling", "the baseline already reshuffles the training rows every epoch (the original study's "
                   "train_test_split shuffled them too), so there is no unshuffled order to fix")]
# The author's question, asked on the same data with the same epochs.
COMPARISONS = [
    ("lstm_fixed", "LSTM, all fixes: true-length readout, raw logits, length-bucketed batches, clip 1.0",
     {"readout": "final_state", "softmax_loss": False, "pad_to_longest": False, "grad_clip": 1.0}, 0.6),
    ("cnn_original", "the original study's CNN architecture (widths 1,2,3,5 x 10 filters, tanh), fixed training",
     {"arch": "cnn", "widths": "1,2,3,5", "filters": 10, "activation": "tanh", "dropout": 0.0, "conv_layers": 1,
      "softmax_loss": False, "pad_to_longest": False}, 0.3),
    ("fasttext", "fastText-style mean of the word embeddings, then linear",
     {"arch": "fasttext", "bigram_buckets": 0, "dropout": 0.0, "lr": 5e-3, "softmax_loss": False,
      "pad_to_longest": False}, 0.1),
]
LSTM_ONLY = ("hidden_size", "num_layers", "bidirectional", "readout", "dropout")


def baseline_flat(hidden_size: int, max_len: int, epochs: int, batch_size: int, seed: int) -> dict:
    return {"arch": "lstm", "hidden_size": hidden_size, "num_layers": 1, "bidirectional": False, "dropout": 0.0,
            "readout": "last_step", "padding": "post", "pad_to_longest": True, "softmax_loss": True,
            "faithful": False, "shuffle": True, "freeze_embeddings": False, "lr": 1e-3, "optimizer": "adam",
            "grad_clip": 0.0, "batch_size": batch_size, "max_len": max_len, "epochs": epochs, "seed": seed}


def derive(base: dict, changes: dict) -> dict:
    """The baseline with some keys changed; keys of the LSTM are dropped when the arch changes."""
    flat = {**base, **changes}
    if flat["arch"] != "lstm":
        flat = {k: v for k, v in flat.items() if k not in LSTM_ONLY or k in changes}
    return flat


def subsample(store: store_mod.Store, fraction: float, seed: int, test_cap: int = 0) -> store_mod.Store:
    """The store with only a stratified ``fraction`` of its training rows (and at most ``test_cap`` test
    and valid rows); dropped rows get split code -1, which no split selects."""
    codes = store.split_codes.copy()
    rng = np.random.default_rng(seed)
    for split, keep in (("train", fraction), ("valid", None), ("test", None)):
        rows = store.indices(split)
        for label in np.unique(store.labels[rows]):
            part = rng.permutation(rows[store.labels[rows] == label])
            n = len(part) if keep is None else max(1, int(round(len(part) * keep)))
            if keep is None and test_cap:
                n = min(n, max(1, test_cap // max(store.num_classes, 1)))
            codes[part[n:]] = -1
    return store.with_split_codes(codes)


def measure_epoch_s(cfg: TrainConfig, store: store_mod.Store, steps: int = 3) -> float:
    """Seconds per baseline epoch (train + evaluation), from a few timed training steps."""
    session = Session(cfg, store, torch.device("cpu"))
    rows = store.indices("train")
    plan = session.batcher.plan(rows, cfg.batch_size, np.random.default_rng(cfg.seed))
    session.step(plan[0])  # warm-up
    t0 = time.perf_counter()
    for batch in plan[1:steps + 1]:
        session.step(batch)
    per_step = (time.perf_counter() - t0) / max(len(plan[1:steps + 1]), 1)
    evaluated = len(store.indices("valid")) + len(store.indices("test"))
    return per_step * len(plan) * (1 + EVAL_COST * evaluated / max(len(rows), 1))


def core_units() -> float:
    """Baseline epochs the baseline, the core ablations and the comparisons cost together."""
    return 1 + sum(c for *_, c in ABLATIONS[:CORE]) + sum(c for *_, c in COMPARISONS)


def plan_epochs(budget_s: float, epoch_s: float) -> tuple[int, float]:
    """(epochs per run, share of the training rows) so that the core runs fit ``BUDGET_SHARE`` of the
    budget; when even ``MIN_EPOCHS`` do not fit, every run trains on the same stratified subsample."""
    planned, units = BUDGET_SHARE * budget_s, core_units()
    epochs = int(max(MIN_EPOCHS, min(MAX_EPOCHS, planned // (units * epoch_s))))
    if epochs * units * epoch_s <= planned:
        return epochs, 1.0
    return epochs, max(MIN_FRACTION, planned / (epochs * units * epoch_s))
