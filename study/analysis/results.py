"""Read an experiment folder into a DataFrame: one row per trial. No Ray, no torch.

    from study.analysis.results import trials_frame
    frame = trials_frame("results/experiments/demo")

Columns: ``trial_id``, ``arch``, ``status`` (Ray's: TERMINATED, RUNNING, PENDING, ERROR, ...),
``node_id``, ``gpu_ids``, ``epochs`` (the last reported epoch), ``num_failures``, ``error`` (last line of
a failed trial's error), ``stopped_by`` (``asha``: stopped early by the scheduler; ``budget``: cut by
``--time-budget-s``, status ``BUDGET_CUT`` until a resume trains it; else empty), every metric of the trial's last report, and ``config/<key>`` for each
hyperparameter. The source is ``trials.json`` (see ``study/experiment.py``).
"""
from __future__ import annotations

import pandas as pd

from study import experiment


def trials_frame(path: str) -> pd.DataFrame:
    """The trials of the experiment at ``path`` (``experiment.experiment_path(storage, name)``)."""
    data = experiment.read_json(f"{path}/{experiment.TRIALS_FILE}")
    if data is None:
        raise experiment.ExperimentError(f"no study at {path} (no {experiment.TRIALS_FILE})")
    rows = []
    for trial in data["trials"]:
        result = dict(trial.get("last_result") or {})
        row = {"trial_id": trial["trial_id"], "arch": trial.get("arch"), "status": trial["status"],
               "node_id": result.pop("node_id", None), "gpu_ids": result.pop("gpu_ids", []),
               "epochs": result.get("epoch", 0), "num_failures": trial.get("num_failures", 0),
               "error": trial.get("error"), "stopped_by": trial.get("stopped_by")}
        row.update({k: v for k, v in result.items() if k not in row})
        row.update({f"config/{k}": v for k, v in (trial.get("config") or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)
