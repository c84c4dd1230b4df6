"""The linear baseline: TF-IDF over word n-grams of the store's token ids, then logistic regression.

    from study.train import linear
    history = linear.train(TrainConfig.from_flat(preset("linear")), store_mod.load("/tmp/imdb2k"))
    python -m study train --store /tmp/imdb2k --preset linear      # the same, through the trainer's CLI

What practitioners fit before any network: it reads the store's token ids (the same tokenizer, vocabulary
and splits as the networks), counts n-grams of 1 to ``ngram_max`` ids that occur in at least ``min_df``
training reviews, weights them by TF-IDF (``sublinear_tf``: 1 + log tf), and fits an L2 logistic
regression with strength ``C``. ``nb_scaling`` is NB-SVM's log-count ratio (Wang and Manning 2012): each
feature is multiplied by r = log((p / |p|) / (q / |q|)), with p and q the smoothed (``nb_alpha``) numbers
of training reviews holding the n-gram in the class and outside it. Two classes make one binary problem;
K > 2 classes make K one-vs-rest problems (the ratio is per class), and their margins are the logits.

Why scikit-learn: its ``TfidfVectorizer`` builds word n-grams from pre-tokenized text (each review is its
ids joined by spaces, so no text tokenizer runs) and stores them sparse, and its ``liblinear`` solver is
the standard, deterministic (seeded) solver for sparse L2 logistic regression. NB scaling is folded into
the coefficients, so the model is one weight matrix over the TF-IDF features plus the intercepts; its
parameters are those coefficients (the IDF weights and ratios are per-feature statistics, not counted).

One fit is the whole training and is reported as one epoch with the trainer's metrics, plus
``eval_time_s`` (scoring validation and test), ``infer_ms_per_review`` (batch 1, median over at most
``LATENCY_REVIEWS`` test reviews) and ``infer_reviews_per_s`` (batches of 256). ``train_time_s`` is the fit
alone (vectorizer + solver); ``peak_rss_mb`` is the process's peak since the fit started (Linux: the
kernel's high-water mark is reset first). The checkpoint state is JSON-like (epoch, history, config): a
resumed trial whose fit finished returns its metrics; one that had not finished fits again (seconds).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
# At import, not in fit: importing scikit-learn takes seconds that are not the fit's.
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from data_prep import store as store_mod
from study.train.config import TrainConfig
from study.train.metrics import classification_metrics, predictions_by_row

THROUGHPUT_BATCH = 256
LATENCY_REVIEWS = 1000  # batch-1 latency is the median over this many test reviews at most


class LinearModel:
    """A fitted vectorizer and the linear scores on its features: ``logits(ids_list)`` -> (N, K)."""

    def __init__(self, cfg: TrainConfig, num_classes: int):
        self.cfg, self.num_classes = cfg, num_classes
        self.vectorizer = None
        self.weights = np.zeros((0, 0))   # (problems, features), NB ratios folded in
        self.intercepts = np.zeros(0)     # (problems,)

    def documents(self, ids_list) -> list[str]:
        """Each review's ids (the first ``max_len``) as one space-joined string for the vectorizer."""
        cut = self.cfg.max_len or None
        return [" ".join(map(str, ids[:cut].tolist())) for ids in ids_list]

    def fit(self, ids_list, labels: np.ndarray) -> "LinearModel":
        m = self.cfg.model
        self.vectorizer = TfidfVectorizer(
            tokenizer=str.split, token_pattern=None, lowercase=False, ngram_range=(1, m.ngram_max),
            min_df=m.min_df, sublinear_tf=m.sublinear_tf, max_features=m.max_features or None,
            dtype=np.float32)
        x = self.vectorizer.fit_transform(self.documents(ids_list))
        present = (x > 0).astype(np.float32)  # which reviews hold each n-gram, for the NB ratios
        weights, intercepts = [], []
        for target in self._targets():
            y = (labels == target).astype(np.int64)
            if y.min() == y.max():
                raise ValueError(f"the training split holds no review of class {target} or only that class")
            ratio = self._log_count_ratio(present, y) if m.nb_scaling else None
            scaled = x.multiply(ratio).tocsr() if ratio is not None else x
            solver = LogisticRegression(C=m.C, solver="liblinear", random_state=self.cfg.seed, max_iter=1000)
            solver.fit(scaled, y)
            coef = solver.coef_[0] * ratio if ratio is not None else solver.coef_[0]
            weights.append(coef)
            intercepts.append(solver.intercept_[0])
        self.weights, self.intercepts = np.vstack(weights), np.asarray(intercepts)
        return self

    def _targets(self) -> list[int]:
        """The positive class of each binary problem: class 1 for two classes, else each class vs the rest."""
        return [1] if self.num_classes == 2 else list(range(self.num_classes))

    def _log_count_ratio(self, present, y: np.ndarray) -> np.ndarray:
        alpha = self.cfg.model.nb_alpha
        p = alpha + np.asarray(present[y == 1].sum(axis=0)).ravel()
        q = alpha + np.asarray(present[y == 0].sum(axis=0)).ravel()
        return np.log((p / p.sum()) / (q / q.sum())).reshape(1, -1)

    def logits(self, ids_list) -> np.ndarray:
        x = self.vectorizer.transform(self.documents(ids_list))
        margins = np.asarray(x @ self.weights.T) + self.intercepts
        if self.num_classes == 2:  # one margin: class 1's log-odds against class 0
            margins = np.hstack([np.zeros_like(margins), margins])
        return margins.astype(np.float32)

    def params(self) -> dict:
        n = int(self.weights.size + self.intercepts.size)
        return {"params_total": n, "params_trainable": n, "params_no_embedding": n, "max_params_per_layer": n}


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of softmax(logits) (for K one-vs-rest problems: the softmax of their margins)."""
    if not len(labels):
        return float("nan")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def _reviews(store: store_mod.Store, rows: np.ndarray) -> list[np.ndarray]:
    return [store.tokens[store.offsets[r]:store.offsets[r + 1]] for r in rows]


def reset_peak_rss() -> None:
    """Linux: reset the kernel's peak-RSS mark so ``peak_rss_mb`` measures what follows, not the process."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass  # not Linux, or not allowed: the process's lifetime peak is reported instead


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # the lifetime peak (kilobytes on Linux)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def inference_speed(model: LinearModel, reviews: list[np.ndarray]) -> dict:
    """Batch-1 latency (median, ms) and batch-256 throughput (reviews/s) of ids -> predicted class."""
    latencies = []
    for ids in reviews[:LATENCY_REVIEWS]:
        t0 = time.perf_counter()
        model.logits([ids]).argmax(axis=1)
        latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for start in range(0, len(reviews), THROUGHPUT_BATCH):
        model.logits(reviews[start:start + THROUGHPUT_BATCH]).argmax(axis=1)
    seconds = time.perf_counter() - t0
    return {"infer_ms_per_review": float(np.median(latencies)) * 1e3 if latencies else float("nan"),
            "infer_reviews_per_s": len(reviews) / seconds if reviews and seconds > 0 else float("nan")}


def fit_and_score(cfg: TrainConfig, store: store_mod.Store) -> tuple[dict, dict]:
    """One fit on the training split, scored on validation and test: the epoch's metrics, and the per-review
    predictions behind them (the report's paired tests)."""
    train_rows, val_rows, test_rows = (store.indices(s) for s in store_mod.SPLITS)
    if len(train_rows) == 0:
        raise ValueError("the store has no training rows")
    train_ids, val_ids, test_ids = (_reviews(store, rows) for rows in (train_rows, val_rows, test_rows))
    reset_peak_rss()
    t0 = time.perf_counter()
    model = LinearModel(cfg, store.num_classes).fit(train_ids, store.labels[train_rows])
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    val_logits, test_logits = model.logits(val_ids), model.logits(test_ids)
    eval_s = time.perf_counter() - t0
    val_labels, test_labels = store.labels[val_rows], store.labels[test_rows]
    val_acc = float((val_logits.argmax(axis=1) == val_labels).mean()) if len(val_rows) else float("nan")
    # plain lists: the one-fit checkpoint state stays JSON-like
    predictions = {key: values.tolist() for split, args in
                   (("val", (val_rows, val_labels, val_logits.argmax(axis=1))),
                    ("test", (test_rows, test_labels, test_logits.argmax(axis=1))))
                   for key, values in predictions_by_row(split, *args).items()}
    metrics = {"epoch": 1, "train_loss": cross_entropy(model.logits(train_ids), store.labels[train_rows]),
            "val_loss": cross_entropy(val_logits, val_labels), "val_acc": val_acc,
            **classification_metrics(test_labels, test_logits.argmax(axis=1), store.num_classes),
            "samples_per_s": len(train_rows) / fit_s, "epoch_time_s": fit_s, "train_time_s": fit_s,
            "eval_time_s": eval_s, **inference_speed(model, test_ids), **model.params(),
            "peak_rss_mb": peak_rss_mb(), "best_epoch": 1, "device": "cpu",
            "threads": 1}  # liblinear and the vectorizer run on one core
    return metrics, predictions


def train(cfg: TrainConfig, store: store_mod.Store, *, resume: dict | None = None,
          on_epoch: Callable[[dict, Callable[[], dict]], None] | None = None,
          log: Callable[[str], None] | None = None) -> list[dict]:
    """The trainer's contract for ``arch: linear``: a list holding the one fit's metrics."""
    if resume is not None and int(resume.get("epoch", 0)) >= 1:
        return [dict(m) for m in resume["history"]]  # the fit finished before the interruption
    metrics, predictions = fit_and_score(cfg, store)
    history = [metrics]
    if log:
        log(f"fit 1/1 val_acc {metrics['val_acc']:.3f} test_acc {metrics['test_acc']:.3f} "
            f"macro_f1 {metrics['macro_f1']:.3f} majority {metrics['majority_share']:.2f} "
            f"{metrics['params_total']:,} coefficients fit {metrics['train_time_s']:.2f}s "
            f"eval {metrics['eval_time_s']:.2f}s")
    if on_epoch:
        on_epoch(metrics, lambda: {"epoch": 1, "history": [dict(metrics)], "config": cfg.to_flat(),
                                   "predictions": predictions})
    return history
