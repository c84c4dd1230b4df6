"""Hypervolume of a front (accuracy above chance x log cost) and how a trial ended (``stop_reason``)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from study.analysis.hypervolume import describe, front_hypervolume, hypervolume
from study.analysis.table import stop_reasons


def test_hypervolume_is_the_staircase_area_on_a_log_cost_axis():
    # two front points at 1 s (0.6) and 10 s (0.8), chance 0.5, reference cost 100 s:
    # from 1 s to 10 s (one decade) at 0.1 above chance, then 10 s to 100 s at 0.3
    assert hypervolume([0.6, 0.8], [1.0, 10.0], chance=0.5, reference_cost=100.0) == pytest.approx(0.4)
    # dominated, below-chance, beyond-reference and NaN points add nothing
    more = hypervolume([0.6, 0.8, 0.7, 0.4, 0.99, np.nan], [1.0, 10.0, 20.0, 0.1, 200.0, 5.0],
                       chance=0.5, reference_cost=100.0)
    assert more == pytest.approx(0.4)
    # ten times cheaper for the same accuracy: one more decade of area
    assert hypervolume([0.6, 0.8], [0.1, 10.0], chance=0.5, reference_cost=100.0) == pytest.approx(0.5)
    assert hypervolume([], [], chance=0.5, reference_cost=1.0) == 0.0


def _table(accs, costs, status="TERMINATED"):
    return pd.DataFrame({"trial_id": [f"t{i}" for i in range(len(accs))], "arch": "fasttext", "status": status,
                         "val_acc": accs, "train_time_s": costs, "num_classes": 2.0})


def test_front_hypervolume_states_its_reference_point():
    hv = front_hypervolume(_table([0.6, 0.8], [1.0, 10.0]), "train_time_s")
    assert hv["reference"] == {"accuracy": 0.5, "cost": 20.0}  # chance, 2 x the costliest trial
    assert hv["value"] == pytest.approx(0.1 * 1 + 0.3 * math.log10(2))
    assert "reference point" in describe(hv, "train_time_s") and "chance" in describe(hv, "train_time_s")
    shared = front_hypervolume(_table([0.6, 0.8], [1.0, 10.0]), "train_time_s",
                               reference={"accuracy": 0.5, "cost": 100.0})
    assert shared["value"] == pytest.approx(0.4)
    empty = front_hypervolume(_table([0.6], [1.0], status="RUNNING"), "train_time_s")
    assert empty["value"] is None and "n/a" in describe(empty, "train_time_s")


def test_stop_reasons_tell_asha_from_the_time_budget():
    t = pd.DataFrame({
        "status": ["TERMINATED", "TERMINATED", "TERMINATED", "TERMINATED", "ERROR", "RUNNING", "PENDING"],
        "epochs": [4, 1, 2, 0, 1, 2, np.nan],
        "config/epochs": [4, 4, 4, 4, 4, 4, 4],
        "early_stopped": [False, True, False, None, False, False, None]})
    assert list(stop_reasons(t)) == ["finished", "early-stopped", "budget-cut", "never-trained", "failed",
                                     "running", "running"]
    booleans = t.iloc[:3].assign(early_stopped=[False, True, False])  # a bool column, as from trials.json
    assert list(stop_reasons(booleans)) == ["finished", "early-stopped", "budget-cut"]
    cut = t.iloc[:2].assign(status="BUDGET_CUT", epochs=[2, 0])  # cut by the resumable time budget
    assert list(stop_reasons(cut)) == ["budget-cut", "never-trained"]
    older = t.drop(columns="early_stopped")  # a study from before the scheduler's mark
    assert list(stop_reasons(older))[:3] == ["finished", "stopped-short", "stopped-short"]
    # the linear baseline is one fit: `study run --max-epochs 4` writes epochs 4 into its config too
    one_fit = t.iloc[:1].assign(arch="linear", epochs=1, early_stopped=False)
    assert list(stop_reasons(one_fit)) == ["finished"]
    assert list(stop_reasons(one_fit.assign(early_stopped=True))) == ["finished"]  # ASHA's STOP came after it
    assert list(stop_reasons(one_fit.assign(arch="cnn"))) == ["budget-cut"]
