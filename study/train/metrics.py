"""Classification metrics and the collapse rule: one definition each, shared by trainer, report and diagnosis.

    metrics = classification_metrics(labels, preds, num_classes)   # accuracy, macro F1, recall, histogram
    is_collapsed(test_acc=0.34, majority_share=0.97, num_classes=3)  # True

Only numpy here (no torch), so the report can apply the same rule to a results table without importing
the training stack. ``is_collapsed`` works on scalars and, elementwise, on numpy arrays or pandas Series.
"""
from __future__ import annotations

import numpy as np

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
