"""Noise: how sure each accuracy is, and whether two models differ by more than chance. numpy only.

    splits = Splits.from_manifest(manifest)             # review counts, the constant predictor's accuracy
    configs = configurations(table, splits)             # one row per configuration: means, 95% intervals
    test = paired_test(correct_a, correct_b)            # paired bootstrap over the same test reviews

A *configuration* is a search trial together with its repeats (``repeat_of``: the same hyperparameters,
other seeds). Its accuracy is the mean over its finished runs, and its 95% interval (a half-width) joins
two sources of noise: which reviews the split holds, and which seed trained the model.
- Reviews: a Wilson score interval for a proportion at the split's size. With one run this is all we
  know; it equals what a bootstrap over the split's reviews gives for an accuracy (the bootstrap of a mean
  of 0/1 outcomes is the binomial), without resampling, and it needs only the accuracy and the count.
  The runs of one configuration see the same reviews, so averaging runs does not shrink this part.
- Seeds: with R >= 2 runs, Student's t interval of the mean of the R accuracies.
The half-width is the root of the sum of their squares (independent sources).

Paired test: two models compared on the *same* test reviews. Each review's correctness is averaged over
a configuration's runs; the difference of the two means is resampled over reviews (a paired bootstrap,
seeded, ``BOOTSTRAP`` resamples), giving a 95% interval and a two-sided p-value. With one run each this
is the bootstrap counterpart of McNemar's test. Test predictions are the best epoch's, chosen on
validation, so testing on the test split here selects nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

Z95 = 1.959963984540054        # two-sided 95% normal quantile
ALPHA = 0.05                   # below this p-value a difference is "distinguishable from noise"
BOOTSTRAP, BOOTSTRAP_SEED = 4000, 0
# Columns averaged over a configuration's runs (accuracies get intervals as well).
AVERAGED = ("val_acc", "test_acc", "macro_f1", "train_time_s", "eval_time_s", "epoch_time_s", "samples_per_s",
            "infer_ms_per_review", "infer_reviews_per_s", "peak_rss_mb", "train_loss", "val_loss")


@dataclass(frozen=True)
class Splits:
    """What the report knows of the store's evaluation splits."""

    n_val: float                # reviews in the validation split (NaN when unknown)
    n_test: float
    constant_val: float         # accuracy of always predicting the train split's majority class
    constant_test: float
    source: str                 # where the figures come from, said in pareto.json

    @staticmethod
    def from_manifest(manifest: dict) -> "Splits":
        counts, by_class = manifest["counts"], manifest["class_counts"]
        majority = int(np.argmax(by_class["train"]))
        share = {s: by_class[s][majority] / counts[s] if counts[s] else float("nan") for s in ("valid", "test")}
        return Splits(float(counts["valid"]), float(counts["test"]), share["valid"], share["test"],
                      "the store's manifest (class counts per split)")

    @staticmethod
    def guessed(table: pd.DataFrame) -> "Splits":
        """Without the store: test reviews from the prediction histograms, balanced classes assumed."""
        hist = table.get("pred_hist", pd.Series(dtype=object))
        sizes = [sum(h) for h in hist if isinstance(h, (list, tuple, np.ndarray)) and len(h)]
        k = pd.to_numeric(table.get("num_classes", pd.Series(dtype=float)), errors="coerce").max()
        chance = 1.0 / k if k and k > 0 else float("nan")
        return Splits(float("nan"), float(max(sizes)) if sizes else float("nan"), chance, chance,
                      "guessed: balanced classes (1 / number of classes); store manifest not found")


def wilson_half(acc, n):
    """Half-width of the 95% Wilson score interval of a proportion ``acc`` over ``n`` reviews."""
    acc, n = np.asarray(acc, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return Z95 / (1 + Z95 ** 2 / n) * np.sqrt(acc * (1 - acc) / n + Z95 ** 2 / (4 * n ** 2))


def interval(values, n: float) -> tuple[float, float]:
    """(mean, 95% half-width) of one configuration's run accuracies on an ``n``-review split."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if v.size == 0:
        return float("nan"), float("nan")
    mean = float(v.mean())
    reviews = float(wilson_half(mean, n))
    if v.size == 1:
        return mean, reviews
    from scipy import stats

    seeds = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, math.hypot(seeds, reviews)


def configuration_of(table: pd.DataFrame) -> pd.Series:
    """Each run's configuration: its own trial id, or the trial it repeats."""
    rep = table["repeat_of"] if "repeat_of" in table.columns else pd.Series(None, index=table.index)
    return rep.where(rep.notna(), table["trial_id"]).astype(str)


def configurations(table: pd.DataFrame, splits: Splits) -> pd.DataFrame:
    """One row per configuration (the search trial's row): ``AVERAGED`` columns replaced by the mean over
    its finished runs, plus ``n_runs``, ``run_ids``, ``val_acc_ci95``, ``test_acc_ci95`` (half-widths)."""
    t = table.copy()
    t["configuration"] = configuration_of(t)
    search = t[t["trial_id"].astype(str) == t["configuration"]].copy()
    finished = t[t["status"] == "TERMINATED"]
    runs = {c: g for c, g in finished.groupby("configuration")}
    n_runs, run_ids, ci = [], [], {"val_acc": [], "test_acc": []}
    for i, row in search.iterrows():
        mine = runs.get(row["trial_id"])
        if mine is None or row["status"] != "TERMINATED":   # an unfinished search trial stands alone
            mine = search.loc[[i]]
        n_runs.append(len(mine) if row["status"] == "TERMINATED" else 0)
        run_ids.append(list(mine["trial_id"].astype(str)))
        for col in AVERAGED:
            if col in mine.columns:
                search.at[i, col] = pd.to_numeric(mine[col], errors="coerce").mean()
        if "collapsed" in mine.columns:     # a configuration collapses when every run of it does
            search.at[i, "collapsed"] = bool(mine["collapsed"].astype(bool).all())
        for col, n in (("val_acc", splits.n_val), ("test_acc", splits.n_test)):
            ci[col].append(interval(pd.to_numeric(mine[col], errors="coerce"), n)[1])
    search["n_runs"], search["run_ids"] = n_runs, run_ids
    search["val_acc_ci95"], search["test_acc_ci95"] = ci["val_acc"], ci["test_acc"]
    return search.drop(columns="configuration").reset_index(drop=True)


def paired_test(correct_a: np.ndarray, correct_b: np.ndarray, *, resamples: int = BOOTSTRAP,
                seed: int = BOOTSTRAP_SEED) -> dict:
    """Paired bootstrap of accuracy(a) - accuracy(b) over the same reviews.

    ``correct_*``: (runs, reviews) 0/1 arrays, columns aligned (the same review in each column). Returns
    diff, its 95% interval (lo, hi), the two-sided p-value of "no difference" and the number of reviews."""
    a, b = np.atleast_2d(correct_a).mean(axis=0), np.atleast_2d(correct_b).mean(axis=0)   # (n,) per review
    per_review = a - b
    n = per_review.size
    diff = float(per_review.mean())
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for start in range(0, resamples, 500):          # (500, n) index blocks keep memory small
        k = min(500, resamples - start)
        draws[start:start + k] = per_review[rng.integers(0, n, size=(k, n))].mean(axis=1)
    # p: how often a resampled difference, re-centred on "no difference", is as far from 0 as the one seen
    extreme = np.abs(draws - diff) >= abs(diff) - 1e-12
    p = float((1 + extreme.sum()) / (resamples + 1)) if diff != 0 else 1.0
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"diff": diff, "lo": float(lo), "hi": float(hi), "p": p, "n": int(n)}


def correctness(runs: list[dict]) -> tuple[np.ndarray, np.ndarray] | None:
    """(test rows, (runs, reviews) 0/1 matrix) of one configuration's runs; None without predictions or
    when the runs disagree on which reviews they were tested on."""
    if not runs:
        return None
    rows = runs[0]["test_rows"]
    if any(len(r["test_rows"]) != len(rows) or (r["test_rows"] != rows).any() for r in runs):
        return None
    return rows, np.stack([(r["test_preds"] == r["test_labels"]).astype(float) for r in runs])


def compare(configs: pd.DataFrame, pairs: list[tuple[str, str]], predictions: dict[str, dict]) -> list[dict]:
    """Paired tests of configuration pairs (trial ids), each on its runs' test predictions.
    Pairs without predictions on the same reviews get ``p`` None."""
    by_id = configs.set_index(configs["trial_id"].astype(str))
    out = []
    for a, b in pairs:
        entry = {"a": a, "b": b, "arch_a": str(by_id.at[a, "arch"]), "arch_b": str(by_id.at[b, "arch"]),
                 "diff": None, "lo": None, "hi": None, "p": None, "n": None,
                 "runs_a": int(by_id.at[a, "n_runs"]), "runs_b": int(by_id.at[b, "n_runs"])}
        ca = correctness([predictions[r] for r in by_id.at[a, "run_ids"] if r in predictions])
        cb = correctness([predictions[r] for r in by_id.at[b, "run_ids"] if r in predictions])
        if ca is not None and cb is not None and len(ca[0]) == len(cb[0]) and (ca[0] == cb[0]).all():
            entry.update(paired_test(ca[1], cb[1]))
        out.append(entry)
    return out


def within_noise(p) -> bool | None:
    return None if p is None else bool(p >= ALPHA)


def p_text(p: float, resamples: int = BOOTSTRAP) -> str:
    """'p = 0.41'; at the bootstrap's resolution, 'p < 0.001' (none of the resamples was as extreme)."""
    return f"p < {10 ** math.ceil(math.log10(2 / (resamples + 1))):g}" if p <= 1 / (resamples + 1) + 1e-12 \
        else f"p = {p:.2g}"
