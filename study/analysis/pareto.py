"""Pareto fronts of accuracy against cost: which trials no other trial beats on both.

Pure functions over a trials frame (one row per trial, as ``results.trials_frame`` returns it); no Ray,
no plotting. A trial *dominates* another when its accuracy is at least as high and its cost at least as
low, and it is strictly better on one of the two. The front is every trial that nothing dominates, so
two trials equal on both accuracy and cost are both on it (neither dominates the other).

Only *finished* trials with a finite accuracy and a finite, positive cost enter a front: a running trial's
numbers still change, an errored one stopped part-way, and a NaN cannot be compared.

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
# ``train_s_per_1k_samples`` is derived by ``with_derived_costs`` as 1000 / samples_per_s.
COSTS: dict[str, tuple[str, str]] = {
    "train_time_s": ("training time (s)", "total wall-clock training time of the trial"),
    "params_no_embedding": ("parameters without embeddings (count)",
                            "model parameters outside the embedding table"),
    "train_s_per_1k_samples": ("training seconds per 1,000 samples (s)",
                               "1000 / samples_per_s: training throughput inverted"),
}


DERIVED_COSTS = ("train_s_per_1k_samples",)


def with_derived_costs(frame: pd.DataFrame) -> pd.DataFrame:
    """Add derived cost columns (a copy): ``train_s_per_1k_samples = 1000 / samples_per_s``."""
    out = frame.copy()
    sps = pd.to_numeric(out.get("samples_per_s", pd.Series(np.nan, index=out.index)), errors="coerce")
    out["train_s_per_1k_samples"] = 1000.0 / sps.where(sps > 0)
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


def eligible(frame: pd.DataFrame, cost: str, accuracy: str = ACCURACY) -> pd.Series:
    """Rows that may enter a front: finished, finite accuracy, finite positive cost."""
    if cost not in frame.columns or accuracy not in frame.columns:
        return pd.Series(False, index=frame.index)
    acc = pd.to_numeric(frame[accuracy], errors="coerce").astype(float)
    cst = pd.to_numeric(frame[cost], errors="coerce").astype(float)
    status = frame["status"] if "status" in frame.columns else pd.Series("TERMINATED", index=frame.index)
    return status.isin(FINISHED) & np.isfinite(acc) & np.isfinite(cst) & (cst > 0)


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
    return lines


def _who(rows: pd.DataFrame) -> str:
    """'cnn trial t1', 'fasttext trials t2, t3 (tied)'; '(collapsed)' when they predict one class."""
    archs = "/".join(dict.fromkeys(rows["arch"].astype(str))) if "arch" in rows else "?"
    ids = ", ".join(rows["trial_id"].astype(str)) if "trial_id" in rows else "?"
    who = f"{archs} trial {ids}" if len(rows) == 1 else f"{archs} trials {ids} (tied)"
    if "collapsed" in rows and rows["collapsed"].astype(bool).all():
        who += " (collapsed: one class)"
    return who





