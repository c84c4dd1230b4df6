"""Read an experiment folder into a DataFrame: one row per trial. No Ray, no torch.

    from study.analysis.results import trials_frame
    frame = trials_frame("results/experiments/demo")

Columns: ``trial_id``, ``arch``, ``status`` (Ray's: TERMINATED, RUNNING, PENDING, ERROR, ...),
``node_id``, ``gpu_ids``, ``epochs`` (the last reported epoch), ``num_failures``, ``error`` (last line of
a failed trial's error), every metric of the trial's last report, ``config/<key>`` for each
hyperparameter, and ``repeat_of``: for a repeat (``study run --repeats``), the trial whose configuration
it trains again with another seed; None for the search's own trials. The sources are ``trials.json`` and
``repeats/trials.json`` with ``repeats/plan.json`` (see ``study/experiment.py``).

    predictions = load_predictions(path, trial_ids)   # {trial_id: {"test_preds": ..., ...}} from checkpoints
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from study import experiment

PREDICTIONS_FILE = "predictions.npz"   # written by study.train.trainer.save_checkpoint


def trials_frame(path: str) -> pd.DataFrame:
    """The trials of the experiment at ``path`` (``experiment.experiment_path(storage, name)``)."""
    data = experiment.read_json(f"{path}/{experiment.TRIALS_FILE}")
    if data is None:
        raise experiment.ExperimentError(f"no study at {path} (no {experiment.TRIALS_FILE})")
    rows = _rows(data["trials"])
    repeats = f"{path}/{experiment.REPEATS_DIR}"
    done, plan = (experiment.read_json(f"{repeats}/{name}") for name in (experiment.TRIALS_FILE, experiment.PLAN_FILE))
    if done and plan:
        # a repeat's config is its plan entry's, exactly: that is how the plan names what it repeats
        repeat_of = {_key(p["config"]): p["repeat_of"] for p in plan}
        rows += [{**r, "repeat_of": repeat_of.get(_key(t.get("config") or {}))}
                 for r, t in zip(_rows(done["trials"]), done["trials"])]
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["repeat_of"] = frame.get("repeat_of", pd.Series(None, index=frame.index, dtype=object))
        frame["repeat_of"] = frame["repeat_of"].astype(object).where(frame["repeat_of"].notna(), None)
    return frame


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _rows(trials: list[dict]) -> list[dict]:
    rows = []
    for trial in trials:
        result = dict(trial.get("last_result") or {})
        row = {"trial_id": trial["trial_id"], "arch": trial.get("arch"), "status": trial["status"],
               "node_id": result.pop("node_id", None), "gpu_ids": result.pop("gpu_ids", []),
               "epochs": result.get("epoch", 0), "num_failures": trial.get("num_failures", 0),
               "error": trial.get("error")}
        row.update({k: v for k, v in result.items() if k not in row})
        row.update({f"config/{k}": v for k, v in (trial.get("config") or {}).items()})
        rows.append(row)
    return rows


def load_predictions(path: str, trial_ids) -> dict[str, dict[str, np.ndarray]]:
    """Each trial's best-epoch predictions ({val,test}_{rows,labels,preds}, store row order) from the
    ``predictions.npz`` in its newest checkpoint folder; trials without one are left out."""
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(path) if "://" in path else (pafs.LocalFileSystem(), path)
    try:
        found = [i.path for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))
                 if i.base_name == PREDICTIONS_FILE]
    except (FileNotFoundError, OSError):
        return {}
    ids, newest = [str(t) for t in trial_ids], {}
    for file in sorted(found):      # checkpoint_000003 sorts after checkpoint_000002: the newest wins
        trial_dir = file.rsplit("/", 3)[-3]
        owner = next((t for t in ids if trial_dir == t or trial_dir.endswith(f"_{t}")), None)
        if owner is not None:
            newest[owner] = file
    out = {}
    for owner, file in newest.items():
        with fs.open_input_file(file) as handle, np.load(handle, allow_pickle=False) as arrays:
            out[owner] = {k: arrays[k] for k in arrays.files}
    return out
