"""How good a front is, in one number: the hypervolume of accuracy above chance against log cost.

    from study.analysis.hypervolume import front_hypervolume, hypervolume
    hv = front_hypervolume(table, "train_time_s")   # {"value": 0.41, "reference": {...}, "axes": "..."}

The plane: x = log10(cost) (lower is better), y = val_acc - chance (higher is better), chance = 1 / number
of classes. The hypervolume is the area that the trials dominate between them and the *reference point*
(y = 0, i.e. chance accuracy; x = log10 of ``REFERENCE_FACTOR`` times the costliest finished trial): a
front that reaches higher accuracy, or the same accuracy an order of magnitude cheaper, covers more. The
unit is "accuracy above chance x decades of cost". On a log axis a factor of 10 in cost counts the same
at any scale, so a cheap baseline and a large network are weighed fairly.

Two studies are comparable only against the same reference point: ``hypervolume`` takes it explicitly
(the benchmark passes one shared by both studies); ``front_hypervolume`` derives it from one study's
trials and states it beside the value. Pure numpy and pandas: no Ray, no torch, no Optuna.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from study.analysis import pareto

REFERENCE_FACTOR = 2.0  # the reference cost: twice the costliest trial, so the best trial's area is not 0
AXES = "(val_acc - chance) x log10(cost): accuracy above chance times decades of cost"


def hypervolume(accuracy, cost, *, chance: float, reference_cost: float) -> float:
    """Area dominated by the points (accuracy up, cost down) above ``chance`` and below ``reference_cost``,
    with cost on a log10 axis. Points at or below chance, at or beyond the reference cost, or not finite
    add nothing; dominated points add nothing either (they lie inside the front's area)."""
    acc = np.asarray(accuracy, dtype=float) - chance
    cst = np.asarray(cost, dtype=float)
    keep = np.isfinite(acc) & np.isfinite(cst) & (acc > 0) & (cst > 0) & (cst < reference_cost)
    if not keep.any():
        return 0.0
    x, y = np.log10(cst[keep]), acc[keep]
    order = np.lexsort((-y, x))  # cheapest first; at equal cost the most accurate first
    x, y = x[order], y[order]
    edges = np.append(x[1:], math.log10(reference_cost))
    # a staircase: from each point to the next cheaper-or-equal one, the best accuracy so far holds
    best = np.maximum.accumulate(y)
    return float(np.sum((edges - x) * best))


def chance_of(t: pd.DataFrame) -> float | None:
    """1 / number of classes, from the trials' prediction histograms (None when no trial says)."""
    classes = pd.to_numeric(t.get("num_classes", pd.Series(dtype=float)), errors="coerce").dropna()
    return 1.0 / float(classes.max()) if len(classes) else None


def reference_point(t: pd.DataFrame, cost: str, accuracy: str = pareto.ACCURACY) -> dict | None:
    """{"accuracy": chance, "cost": REFERENCE_FACTOR x the costliest eligible trial}, or None."""
    chance = chance_of(t)
    ok = pareto.eligible(t, cost, accuracy)
    if chance is None or not ok.any():
        return None
    costliest = float(pd.to_numeric(t.loc[ok, cost], errors="coerce").max())
    return {"accuracy": chance, "cost": REFERENCE_FACTOR * costliest}


def front_hypervolume(t: pd.DataFrame, cost: str, accuracy: str = pareto.ACCURACY,
                      reference: dict | None = None) -> dict:
    """The hypervolume of one study's trials against ``cost`` (only eligible trials: finished, finite),
    with the reference point used (its own unless one is given) and the axes, as pareto.json holds it."""
    reference = reference or reference_point(t, cost, accuracy)
    if reference is None:
        return {"value": None, "reference": None, "axes": AXES}
    ok = pareto.eligible(t, cost, accuracy)
    value = hypervolume(t.loc[ok, accuracy], t.loc[ok, cost], chance=reference["accuracy"],
                        reference_cost=reference["cost"])
    return {"value": value, "reference": reference, "axes": AXES}


def all_hypervolumes(t: pd.DataFrame, costs) -> dict[str, dict]:
    return {cost: front_hypervolume(t, cost) for cost in costs}


def describe(hv: dict, cost: str) -> str:
    """One line for summary.md: the value, its unit and the reference point."""
    from study.analysis import format as fmt

    if hv["value"] is None:
        return "Hypervolume: n/a (no finished trial with this cost, or the number of classes is unknown)."
    ref = hv["reference"]
    return (f"Hypervolume: **{fmt.fixed(hv['value'], 3)}** (accuracy above chance x decades of {cost}; "
            f"reference point: {pareto.ACCURACY} = {fmt.fixed(ref['accuracy'], 3)} (chance), "
            f"{cost} = {fmt.value(ref['cost'])} ({REFERENCE_FACTOR:g} x the costliest finished trial)).")
