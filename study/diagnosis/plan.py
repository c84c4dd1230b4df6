"""The diagnosis's plan: the baseline recipe, the conditions in priority order, the seeds, and the sizing.

    base = baseline_flat(hidden_size=64, num_layers=1, max_len=400, epochs=3, batch_size=16)
    derive(base, {"readout": "final_state"})        # the baseline with one factor changed
    [c.name for c in conditions()]                  # baseline, comparisons, padding fixes, other causes, extras

Every condition is trained with each of the seeds. The order is the priority: the comparisons set the bar
for "recovered" (verdict.py), so they run right after the baseline; the alternative causes run before the
extras; the two-factor follow-up (``FOLLOW_UP``) is added by the command only when runs learn and then
collapse. The sizing (``size_runs``) picks how many training rows every run uses from a fixed ladder, so
that all runs fit the budget on the workers there are. Step times are CPU times and the ladder's rungs are
sqrt(2) apart, so the same command on the same machine picks the same rung, busy or not, and gives the
same results (every run is seeded and deterministic on one thread).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from data_prep import store as store_mod
from study.train.config import TrainConfig
from study.train.trainer import Session

PADDING = "padding/readout"
INSTABILITY = "instability (two factors)"
BASELINE, COMPARISON, ONE_FACTOR, EXTRA, FOLLOW_UP_KIND = "baseline", "comparison", "one factor", "extra", "follow-up"
EVAL_COST = 0.35     # an evaluated row costs about a third of a trained one (forward pass only)
# Of the budget planned for the runs; the rest is for start-up (store, step timing, Ray: 20-30 s on 2 cores) and
# for step times measured up to STEP_NOISE low. The default command's runs (800 rows, estimated at 7.5-7.6 min)
# finished 7.7-7.9 min after it started on 2 idle cores.
BUDGET_SHARE = 0.85
RUN_OVERHEAD_S = 3.0  # per run: store load (cached per worker), model set-up, the best-epoch state copies
MIN_TRAIN_ROWS = 200
# Fresh measurements of all step times move their sum by about this much: 13 of the default command's on
# 2 idle cores estimated its runs at 7.1-8.0 min.
STEP_NOISE = 0.07


@dataclass(frozen=True)
class Condition:
    name: str
    kind: str          # BASELINE, COMPARISON, ONE_FACTOR, EXTRA or FOLLOW_UP_KIND
    factor: str        # what the change is about (the recipe's description for comparisons)
    changes: dict = field(default_factory=dict)  # flat keys changed from the baseline


# The one-factor changes, in priority order: the padding/readout fixes, then the alternative causes.
ONE_FACTOR_CHANGES = [
    Condition("readout at the true length (final_state)", ONE_FACTOR, PADDING, {"readout": "final_state"}),
    Condition("pre-padding", ONE_FACTOR, PADDING, {"padding": "pre"}),
    Condition("max pooling over time", ONE_FACTOR, PADDING, {"readout": "max"}),
    Condition("no softmax before the loss", ONE_FACTOR, "softmax before the loss", {"softmax_loss": False}),
    Condition("gradient clipping (norm 1.0)", ONE_FACTOR, "optimisation", {"grad_clip": 1.0}),
    Condition("lower learning rate (1e-4)", ONE_FACTOR, "optimisation", {"lr": 1e-4}),
    Condition("frozen embeddings", ONE_FACTOR, "embedding fine-tuning", {"freeze_embeddings": True}),
]
EXTRAS = [
    Condition("pad each batch to its own longest (length-bucketed)", EXTRA, PADDING,
              {"pad_to_longest": False, "length_buckets": True}),
]
# The author's question, asked on the same data with the same epochs; also the bar for "recovered".
COMPARISONS = [
    Condition("lstm_fixed", COMPARISON, "LSTM, all fixes: true-length readout, raw logits, length-bucketed "
              "batches, clip 1.0", {"readout": "final_state", "softmax_loss": False, "pad_to_longest": False,
                                    "length_buckets": True, "grad_clip": 1.0}),
    Condition("cnn_original", COMPARISON, "the original study's CNN architecture (widths 1,2,3,5 x 10 filters, "
              "tanh), fixed training", {"arch": "cnn", "widths": "1,2,3,5", "filters": 10, "activation": "tanh",
                                        "dropout": 0.0, "conv_layers": 1, "softmax_loss": False,
                                        "pad_to_longest": False, "length_buckets": True}),
    Condition("fasttext", COMPARISON, "fastText-style mean of the word embeddings, then linear",
              {"arch": "fasttext", "bigram_buckets": 0, "dropout": 0.0, "lr": 5e-3, "softmax_loss": False,
               "pad_to_longest": False, "length_buckets": True}),
]
# The usual remedy for a run that learns and then collapses, combined with a readout fix (two factors).
REMEDY = {"softmax_loss": False, "grad_clip": 1.0}
REMEDY_NAME = "raw logits + clipping (norm 1.0)"
NOT_APPLICABLE = [("shuffling", "the baseline already reshuffles the training rows every epoch (the original study's "
                   "train_test_split shuffled them too), so there is no unshuffled order to fix")]
NOT_TESTED = ["batch size 1 (the original study's; batches of the --batch-size here)",
              "dense Adam over the embedding (the original study's; sparse updates here)"]
LSTM_ONLY = ("hidden_size", "num_layers", "bidirectional", "readout", "dropout")


def baseline_flat(hidden_size: int, num_layers: int, max_len: int, epochs: int, batch_size: int,
                  seed: int = 0) -> dict:
    """The original study's LSTM recipe at the given size: post-padding to the longest, last-step readout,
    softmax before the loss, Adam 1e-3, rows reshuffled every epoch and batched in that order."""
    return {"arch": "lstm", "hidden_size": hidden_size, "num_layers": num_layers, "bidirectional": False,
            "dropout": 0.0, "readout": "last_step", "padding": "post", "pad_to_longest": True,
            "length_buckets": False, "softmax_loss": True, "faithful": False, "shuffle": True,
            "freeze_embeddings": False, "lr": 1e-3, "optimizer": "adam", "grad_clip": 0.0,
            "batch_size": batch_size, "max_len": max_len, "epochs": epochs, "seed": seed}


def derive(base: dict, changes: dict) -> dict:
    """The baseline with some keys changed; keys of the LSTM are dropped when the arch changes."""
    flat = {**base, **changes}
    if flat["arch"] != "lstm":
        flat = {k: v for k, v in flat.items() if k not in LSTM_ONLY or k in changes}
    return flat


def conditions(baseline_only: bool = False) -> list[Condition]:
    """Every condition in priority order (the follow-up is not among them: it depends on the results)."""
    head = [Condition("baseline", BASELINE, "-"), *COMPARISONS]
    return head if baseline_only else head + ONE_FACTOR_CHANGES + EXTRAS


def follow_up(readout_fix: Condition) -> Condition:
    return Condition(f"follow-up: {readout_fix.name} + {REMEDY_NAME}", FOLLOW_UP_KIND, INSTABILITY,
                     {**readout_fix.changes, **REMEDY})


def seeds(first: int, count: int) -> list[int]:
    return list(range(first, first + count))


def subsample(store: store_mod.Store, train_rows: int, seed: int, test_cap: int = 0) -> store_mod.Store:
    """The store with a stratified sample of about ``train_rows`` training rows (and at most ``test_cap``
    test and valid rows); dropped rows get split code -1, which no split selects."""
    codes = store.split_codes.copy()
    rng = np.random.default_rng(seed)
    fraction = min(1.0, train_rows / max(len(store.indices("train")), 1))
    for split, keep in (("train", fraction), ("valid", None), ("test", None)):
        rows = store.indices(split)
        for label in np.unique(store.labels[rows]):
            part = rng.permutation(rows[store.labels[rows] == label])
            n = len(part) if keep is None else max(1, int(round(len(part) * keep)))
            if keep is None and test_cap:
                n = min(n, max(1, test_cap // max(store.num_classes, 1)))
            codes[part[n:]] = -1
    return store.with_split_codes(codes)


def sample_seconds(flat: dict, store: store_mod.Store, steps: int = 8) -> float:
    """CPU seconds per trained row of this config on one thread: the fastest of a few timed steps, after
    two warm-up steps.

    CPU time, not wall time, and the fastest step, not the mean: other work on the machine (and the first
    steps' one-off costs) then hardly moves the figure, so the same command picks the same training rows
    and gives the same table, busy machine or not (it only takes longer)."""
    cfg = TrainConfig.from_flat(flat)
    torch.manual_seed(0)
    session = Session(cfg, store, torch.device("cpu"))
    plan = session.batcher.plan(store.indices("train"), cfg.batch_size, np.random.default_rng(0))
    for batch in plan[:2]:
        session.step(batch)
    width = session.batcher.width
    per_cell = []  # CPU seconds per padded (row, step) cell: comparable across batches of other widths
    for batch in plan[2:2 + steps] or plan[:1]:
        t0 = time.process_time()
        session.step(batch)
        per_cell.append((time.process_time() - t0) / (len(batch) * width(batch)))
    mean_width = sum(len(b) * width(b) for b in plan) / max(sum(len(b) for b in plan), 1)
    return min(per_cell) * mean_width


def row_ladder(full: int) -> list[int]:
    """Training-row counts the sizing may choose: 200, 280, 400, 560, 800, ... (x sqrt 2), then all rows."""
    rungs, k = [], 0
    while (n := int(round(MIN_TRAIN_ROWS * math.sqrt(2) ** k, -1))) < full:
        rungs.append(n)
        k += 1
    return rungs + [full]


def run_seconds(per_sample_s: float, epochs: int, train_rows: int, valid_rows: int, test_rows: int) -> float:
    """One run: epochs of training and validation, one test pass at the best epoch, set-up."""
    rows = epochs * (train_rows + EVAL_COST * valid_rows) + EVAL_COST * test_rows
    return per_sample_s * rows + RUN_OVERHEAD_S


class Sizing(NamedTuple):
    rows: int           # training rows per run
    wall_s: float       # estimated wall seconds of all runs on the workers
    close_call: bool    # within STEP_NOISE of fitting one rung more, or of not fitting this one


def size_runs(budget_s: float, per_sample_s: list[float], runs_per_condition: int, epochs: int, workers: int,
              full_train: int, valid_rows: int, test_rows: int) -> Sizing:
    """The largest rung of the ladder whose runs (every condition x seed) fit ``BUDGET_SHARE`` of the budget
    on ``workers`` parallel workers; ``close_call`` when step-time noise could move the choice by a rung."""
    def wall(rows: int) -> float:
        total = sum(run_seconds(s, epochs, rows, valid_rows, test_rows) for s in per_sample_s)
        return total * runs_per_condition / max(workers, 1)

    planned = BUDGET_SHARE * budget_s
    ladder = row_ladder(full_train)
    fitting = [n for n in ladder if wall(n) <= planned]
    rows = fitting[-1] if fitting else ladder[0]
    above = ladder[ladder.index(rows) + 1] if rows != ladder[-1] else None
    close = (fitting and wall(rows) > planned / (1 + STEP_NOISE)) or \
        (above is not None and wall(above) < planned * (1 + STEP_NOISE))
    return Sizing(rows, wall(rows), bool(close))
