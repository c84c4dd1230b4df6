"""Pareto fronts of accuracy against cost: which trials no other trial beats on both.

Pure functions over a trials frame (one row per trial, as ``results.trials_frame`` returns it); no Ray,
no plotting. A trial *dominates* another when its accuracy is at least as high and its cost at least as
low, and it is strictly better on one of the two. The front is every trial that nothing dominates, so
two trials equal on both accuracy and cost are both on it (neither dominates the other).

Only *finished* trials with a finite accuracy and a finite, positive cost enter a front: a running trial's
numbers still change, an errored one stopped part-way, and a NaN cannot be compared. Every front starts
at the *constant predictor* (always the train split's majority class: zero cost, ``constant`` accuracy):
a trial at or below it (``below_constant``, set by ``mark_constant``) buys nothing and is never on a front.

    from study.analysis.pareto import front_ids, COSTS
    ids = front_ids(frame, cost="train_time_s")            # accuracy = val_acc
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from study.analysis import format as fmt

ACCURACY = "val_acc"          # fronts select on validation accuracy; test accuracy is reported beside it
REPORTED_ACCURACY = "test_acc"
FINISHED = ("TERMINATED",)    # Ray's status for trials that ended normally (ASHA-stopped ones included)

# Cost columns a front can be drawn against: column -> (axis label with unit, what it measures).
# Derived ones come from ``with_derived_costs`` and, with a price, ``with_prices``.
COSTS: dict[str, tuple[str, str]] = {
    "train_time_s": ("training time (s)", "the trial's training steps (batches, forward, backward, optimizer), "
                     "evaluation excluded"),
    "infer_ms_per_review": ("inference ms per review, batch 1 (ms)",
                            "median time to classify one test review on its own"),
    "params_no_embedding": ("parameters without embeddings (count)",
                            "model parameters outside the embedding table"),
    "train_cost": ("training cost (price units)", "train_time_s x the trial's CPUs and GPUs x their price per hour"),
    "cost_per_1m_reviews": ("cost per 1M reviews served (price units)",
                            "1M reviews at infer_reviews_per_s (batch 256) x the trial's price per hour"),
    "batch_ms_per_review": ("inference ms per review, batch 256 (ms)", "1000 / infer_reviews_per_s"),
    "train_s_per_1k_samples": ("training seconds per 1,000 samples (s)",
                               "1000 / samples_per_s: training throughput inverted"),
    "peak_rss_mb": ("peak memory (MB)", "the trial's own peak resident memory"),
}
# Drawn as PNG/SVG by default (all of them are in pareto.json and the page; `report --all-plots` draws all).
DEFAULT_PLOTS = ("train_time_s", "infer_ms_per_review", "params_no_embedding", "train_cost")
CONSTANT = "constant predictor (the train split's majority class)"


DERIVED_COSTS = ("train_s_per_1k_samples", "batch_ms_per_review")


def with_derived_costs(frame: pd.DataFrame) -> pd.DataFrame:
    """Add derived cost columns (a copy): ``train_s_per_1k_samples = 1000 / samples_per_s`` and
    ``batch_ms_per_review = 1000 / infer_reviews_per_s``."""
    out = frame.copy()
    for col, rate in (("train_s_per_1k_samples", "samples_per_s"), ("batch_ms_per_review", "infer_reviews_per_s")):
        per_s = pd.to_numeric(out.get(rate, pd.Series(np.nan, index=out.index)), errors="coerce")
        out[col] = 1000.0 / per_s.where(per_s > 0)
    return out


def with_prices(frame: pd.DataFrame, price: dict | None, cpus: float, gpus: float) -> pd.DataFrame:
    """Add ``train_cost`` and ``cost_per_1m_reviews`` (a copy) from a price per hour of one CPU and one GPU
    (``study run --price-per-hour``) and the resources each trial held; unchanged without a price."""
    if not price:
        return frame
    out = frame.copy()
    hourly = cpus * price.get("cpu", 0.0) + gpus * price.get("gpu", 0.0)
    rate = pd.to_numeric(out.get("infer_reviews_per_s"), errors="coerce")
    out["train_cost"] = pd.to_numeric(out["train_time_s"], errors="coerce") / 3600 * hourly
    out["cost_per_1m_reviews"] = 1e6 / rate.where(rate > 0) / 3600 * hourly
    return out


def mark_constant(frame: pd.DataFrame, constant: float, accuracy: str = ACCURACY) -> pd.DataFrame:
    """Add ``below_constant`` (a copy): accuracy at or below the constant predictor's (never on a front)."""
    out = frame.copy()
    acc = pd.to_numeric(out.get(accuracy, pd.Series(np.nan, index=out.index)), errors="coerce")
    out["below_constant"] = (acc <= constant).fillna(False).astype(bool) if np.isfinite(constant) else False
    return out


def non_dominated(accuracy, cost) -> np.ndarray:
    """Boolean mask of non-dominated points (higher accuracy, lower cost); NaN/inf points are never on it.

    O(n^2) comparisons in numpy: studies hold hundreds of trials, not millions.
    """
    acc = np.asarray(accuracy, dtype=float)
    cst = np.asarray(cost, dtype=float)
    valid = np.isfinite(acc) & np.isfinite(cst)
    a, c = acc[valid], cst[valid]
    # (n, n): row i dominates column j
    no_worse = (a[:, None] >= a[None, :]) & (c[:, None] <= c[None, :])
    better = (a[:, None] > a[None, :]) | (c[:, None] < c[None, :])
    dominated = (no_worse & better).any(axis=0)
    mask = np.zeros(acc.shape, dtype=bool)
    mask[np.flatnonzero(valid)[~dominated]] = True
    return mask


def measured(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> pd.Series:
    """Finished rows with a finite accuracy and a finite, positive cost: the points a plot fills in."""
    if cost not in frame.columns or accuracy not in frame.columns:
        return pd.Series(False, index=frame.index)
    acc = pd.to_numeric(frame[accuracy], errors="coerce").astype(float)
    cst = pd.to_numeric(frame[cost], errors="coerce").astype(float)
    status = frame["status"] if "status" in frame.columns else pd.Series("TERMINATED", index=frame.index)
    return status.isin(FINISHED) & np.isfinite(acc) & np.isfinite(cst) & (cst > 0)


def eligible(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> pd.Series:
    """Rows that may enter a front: measured, and above the constant predictor."""
    above = ~frame["below_constant"].astype(bool) if "below_constant" in frame.columns else True
    return measured(frame, cost, accuracy) & above


def front_mask(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> pd.Series:
    """Boolean Series over ``frame``: True for the trials on the front of ``accuracy`` against ``cost``."""
    ok = eligible(frame, cost, accuracy)
    mask = pd.Series(False, index=frame.index)
    if ok.any():
        sub = frame[ok]
        mask[ok] = non_dominated(pd.to_numeric(sub[accuracy], errors="coerce"),
                                 pd.to_numeric(sub[cost], errors="coerce"))
    return mask


def front(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> pd.DataFrame:
    """The front's rows, cheapest first (ties: most accurate first, then trial id)."""
    rows = frame[front_mask(frame, cost, accuracy)].copy()
    if rows.empty:
        return rows
    sort = [cost, accuracy] + (["trial_id"] if "trial_id" in rows.columns else [])
    return rows.sort_values(sort, ascending=[True, False] + [True] * (len(sort) - 2), kind="stable")


def front_ids(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> list[str]:
    return [str(t) for t in front(frame, cost, accuracy)["trial_id"]]


def all_fronts(frame: pd.DataFrame, costs=None, accuracy: str = ACCURACY) -> dict[str, list[str]]:
    """{cost: [trial ids on its front, cheapest first]} for every cost column present in ``frame``."""
    costs = list(COSTS) if costs is None else list(costs)
    return {c: front_ids(frame, c, accuracy) for c in costs if c in frame.columns}


def front_points(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> list[dict]:
    """pareto.json's front, cheapest first: each point with its runs' means and 95% half-widths
    (``study.analysis.noise.configurations`` gives the frame these columns)."""
    points = []
    for _, r in front(frame, cost, accuracy).iterrows():
        points.append({"trial_id": str(r["trial_id"]), "arch": str(r.get("arch")), cost: _num(r[cost]),
                       "n_runs": int(r.get("n_runs", 1)),
                       **{f"{a}_{k}": _num(r.get(a if k == "mean" else f"{a}_ci95"))
                          for a in (ACCURACY, REPORTED_ACCURACY) for k in ("mean", "ci95")}})
    return points


def _num(v):
    v = pd.to_numeric(v, errors="coerce")
    return None if v is None or pd.isna(v) else float(v)


def describe_front(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY,
                   reported: str = REPORTED_ACCURACY, limit: int = 8) -> list[str]:
    """The front in words: each cheaper front member against the most accurate one.

    e.g. "for 2.1 points less val accuracy (test 80.3 vs 82.0), fasttext trial t3 is 12x cheaper in
    train_time_s than cnn trial t1 (4.1 vs 49.5)". Points are percentage points of accuracy.
    """
    rows = front(frame, cost, accuracy)
    if rows.empty:
        return [f"no finished trial has both {accuracy} and {cost}"]
    rows = rows.sort_values([accuracy, cost], ascending=[False, True], kind="stable")
    # trials tied on both numbers are one point of the front: name them together
    groups = [g for _, g in rows.groupby([accuracy, cost], sort=False)]
    top = groups[0].iloc[0]
    lines = [f"most accurate: {_who(groups[0])} with {accuracy} {fmt.points(top[accuracy])}"
             f" ({reported} {fmt.points(top.get(reported))}) at {cost} {fmt.short(top[cost])}"]
    for g in groups[1:limit]:
        r = g.iloc[0]
        drop = 100.0 * (float(top[accuracy]) - float(r[accuracy]))
        ratio = float(top[cost]) / float(r[cost])
        verb = "is" if len(g) == 1 else "are"
        lines.append(f"for {drop:.{1 if drop >= 0.05 else 2}f} points less {accuracy} "
                     f"({reported} {fmt.points(r.get(reported))} vs {fmt.points(top.get(reported))}), {_who(g)} "
                     f"{verb} {fmt.ratio(ratio)} cheaper in {cost} than {_who(groups[0])} "
                     f"({fmt.short(r[cost])} vs {fmt.short(top[cost])})")
    if len(groups) > limit:
        lines.append(f"... and {len(groups) - limit} more front points (see pareto.json)")
    off = sorted(set(frame.loc[eligible(frame, cost, accuracy), "arch"].astype(str))
                 - set(rows["arch"].astype(str))) if "arch" in frame.columns else []
    for arch in off:
        lines.append(f"{arch} is not on this front: each finished {arch} trial is dominated (another "
                     f"trial has at least its {accuracy} at no more {cost}, better on one)")
    if "below_constant" in frame.columns and frame["below_constant"].astype(bool).any():
        low = frame[frame["below_constant"].astype(bool)]
        ids = ", ".join(f"{a} {i}" for a, i in zip(low["arch"].astype(str), low["trial_id"].astype(str)))
        lines.append(f"never on a front, at or below the {CONSTANT} that costs nothing: {ids}")
    return lines


def _who(rows: pd.DataFrame) -> str:
    """'cnn trial t1', 'fasttext trials t2, t3 (tied)'; '(collapsed)' when they predict one class."""
    archs = "/".join(dict.fromkeys(rows["arch"].astype(str))) if "arch" in rows else "?"
    ids = ", ".join(rows["trial_id"].astype(str)) if "trial_id" in rows else "?"
    who = f"{archs} trial {ids}" if len(rows) == 1 else f"{archs} trials {ids} (tied)"
    if "collapsed" in rows and rows["collapsed"].astype(bool).all():
        who += " (collapsed: one class)"
    return who





