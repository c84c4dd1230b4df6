"""Metric keys, classification metrics, the collapse rule, the per-review predictions' layout and the trial's
peak memory: one definition each.

    metrics = classification_metrics(labels, preds, num_classes)   # accuracy, macro F1, recall, histogram
    is_collapsed(test_acc=0.34, majority_share=0.97, num_classes=3)  # True
    reset_peak_rss(); ...; peak_rss_mb()                           # this process's peak since the reset

Only numpy here (no torch), so the report can apply the same rule to a results table without importing
the training stack. ``is_collapsed`` works on scalars and, elementwise, on numpy arrays or pandas Series.

The key tuples below are the vocabulary every training path reports per epoch (the trainer, and any other
architecture's own loop) and the report reads: a path that trains a model emits each of
``ACCURACY_KEYS + COST_KEYS + RUN_KEYS``.
"""
from __future__ import annotations

import os
import resource

import numpy as np

# Selection and reported accuracy: ``val_acc`` is the best validation accuracy so far, the other two are
# measured on the test split at that epoch (``best_epoch``); the test split is evaluated only then.
ACCURACY_KEYS = ("val_acc", "test_acc", "macro_f1")
# Costs of the trial alone. train_time_s: training steps only (batch building, forward, backward,
# optimizer), summed over epochs; eval_time_s: validation and test passes, summed; epoch_time_s: the last
# epoch's train + eval wall time; samples_per_s = epochs x train rows / train_time_s; infer_*: the
# trained model serving test reviews, one at a time (median ms) and in batches of 256 (reviews/s);
# peak_rss_mb: the trial's own peak resident memory (reset when it starts; in a reused Ray worker that
# still counts what the process holds from before, e.g. its cached store and the allocator's free pages).
COST_KEYS = ("train_time_s", "eval_time_s", "epoch_time_s", "samples_per_s", "infer_ms_per_review",
             "infer_reviews_per_s", "peak_rss_mb")
RUN_KEYS = ("best_epoch", "seed")
# Money, derived by the report from the study's --price-per-hour and the trial's resources.
PRICED_KEYS = ("train_cost", "cost_per_1m_reviews")

COLLAPSE_SHARE = 0.9      # at least this share of predictions in one class ...
COLLAPSE_MARGIN = 0.05    # ... and accuracy within this of chance (1 / number of classes)


def chance(num_classes):
    """Accuracy of guessing on balanced classes."""
    return 1.0 / num_classes


def at_chance(accuracy, num_classes):
    return abs(accuracy - chance(num_classes)) <= COLLAPSE_MARGIN


def is_collapsed(accuracy, majority_share, num_classes):
    """A model that predicts (almost) one class at (about) chance accuracy: the original LSTM's failure."""
    return (majority_share >= COLLAPSE_SHARE) & at_chance(accuracy, num_classes)


def classification_metrics(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict:
    """Accuracy, macro F1, per-class recall, the prediction histogram and the majority share."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # [true, predicted]
    np.add.at(confusion, (labels, preds), 1)
    tp = np.diag(confusion).astype(float)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    n = max(len(labels), 1)
    return {"test_acc": float(tp.sum() / n) if len(labels) else float("nan"),
            "macro_f1": float(f1.mean()), "recall": [float(r) for r in recall],
            "pred_hist": [int(c) for c in predicted], "majority_share": float(predicted.max() / n)}


def predictions_by_row(split: str, rows: np.ndarray, labels: np.ndarray, preds: np.ndarray) -> dict:
    """One split's per-review predictions as every training path stores them: ``{split}_rows``,
    ``{split}_labels``, ``{split}_preds`` (int64), sorted by store row, so that two trials' predictions pair
    up row by row in the report's paired tests."""
    order = np.argsort(rows, kind="stable")
    return {f"{split}_{name}": np.asarray(values)[order].astype(np.int64)
            for name, values in (("rows", rows), ("labels", labels), ("preds", preds))}


_CLEAR_REFS = "/proc/self/clear_refs"


def reset_peak_rss() -> bool:
    """Start a new peak for this process (Linux: writing 5 to clear_refs resets VmHWM). A Ray worker runs
    trial after trial, so without this every trial would report the worker's lifetime peak. False where
    the platform cannot reset it (then ``peak_rss_mb`` is the process's lifetime peak)."""
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory (MB) of this process since the last ``reset_peak_rss``."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1024 * 1024 if os.uname().sysname == "Darwin" else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
