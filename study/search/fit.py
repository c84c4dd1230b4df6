"""A study's Tuner fitted to its end: checkpoints a crash left behind put back, the done line, then the repeats.

    slots = fit.slots(cpus_per_trial, gpus_per_trial, max_concurrent, total)
    code = fit.fit(tuner, path, started, slots) | fit.then_repeats(path, launch)   # run and resume end so

Imported by ``command.py`` only after ``ray_env.connect`` has prepared Ray's environment.
"""
from __future__ import annotations

import json
import time

import pyarrow.fs as pafs
import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from study import experiment
from study.analysis.results import trials_frame
from study.search import progress, repeats, trial


def slots(cpus: float, gpus: float, max_concurrent: int | None, total: int) -> int:
    """How many trials can train at once on the cluster Ray sees."""
    have = ray.cluster_resources()
    slots = int(have.get("CPU", 1) // cpus) if cpus else total
    if gpus:
        slots = min(slots, int(have.get("GPU", 0) // gpus))
    return max(1, min(slots, max_concurrent or total, total))


def fit(tuner, path: str, started: float, slots: int) -> int:
    """``tuner.fit()``, then the done line: wall time against the trials' own work; 1 if a trial errored."""
    before = _worked_s(path)
    start = time.time()
    tuner.fit()
    wall = time.time() - start
    frame = trials_frame(path)
    train_s, eval_s = (after - earlier for after, earlier in zip(_worked_s(path), before))
    errored = int((frame["status"] == "ERROR").sum()) if len(frame) else 0
    cut = int((frame["status"] == "BUDGET_CUT").sum()) if len(frame) else 0
    # Overhead at a glance: the study's wall time against the ideal of this session's trial work spread over
    # the trials that can run at once (1.0 = no overhead). Over training and evaluation it is what Ray, trial
    # start-up, the serving-speed measurement, checkpoints and idle slots add; over training alone,
    # evaluation counts as overhead too.
    def ratio(seconds: float) -> str:
        return f"x{wall / (seconds / slots):.2f}" if seconds > 0 else "n/a"

    print(f"done: set-up {start - started:.1f}s, study {wall:.1f}s wall; trials trained {train_s:.1f}s and "
          f"evaluated {eval_s:.1f}s in total, {slots} at a time: overhead {ratio(train_s + eval_s)} "
          f"({ratio(train_s)} over training alone); {errored} errored"
          + (f"; {cut} cut by the time budget" if cut else ""), flush=True)
    return 1 if errored else 0


def _worked_s(path: str) -> tuple[float, float]:
    """Training and evaluation seconds recorded so far (a resumed trial's earlier epochs count too)."""
    try:
        frame = trials_frame(path)
    except experiment.ExperimentError:
        return 0.0, 0.0
    return tuple(float(frame[key].fillna(0).sum()) if key in frame else 0.0
                 for key in ("train_time_s", "eval_time_s"))


def then_repeats(path: str, launch: dict) -> int:
    """After the search: the repeats of ``repeats.py``, then what they cost as a share of the study. Not
    while the time budget has cut trials: the front is not known until ``resume`` has trained them."""
    if not launch.get("repeats"):
        return 0
    if experiment.read_json(f"{path}/{experiment.BUDGET_FILE}"):
        print("repeats wait until `study resume` has trained the trials the time budget cut", flush=True)
        return 0
    folder = f"{path}/{experiment.REPEATS_DIR}"
    if tune.Tuner.can_restore(folder):
        repair_checkpoints(folder)

    def callbacks(folder: str, total: int) -> list:
        return [progress.ProgressLine(total), progress.TrialsSnapshot(folder), JsonLoggerCallback(),
                CSVLoggerCallback()]

    repeats.fit_repeats(path, launch, trial.trainable(launch["store"], launch["store_hash"],
                                                      launch["cpus_per_trial"], launch["gpus_per_trial"]),
                        callbacks)
    frame = trials_frame(path)
    spent = frame[["train_time_s", "eval_time_s"]].fillna(0).sum(axis=1) if len(frame) else frame
    mine = frame["repeat_of"].notna() if len(frame) else frame
    if len(frame) and spent.sum() > 0:
        print(f"repeats: {int(mine.sum())} runs trained and evaluated {spent[mine].sum():.1f}s of the study's "
              f"{spent.sum():.1f}s ({100 * spent[mine].sum() / spent.sum():.0f}%)", flush=True)
    return int(bool((frame.loc[mine, "status"] == "ERROR").any())) if len(frame) else 0


def repair_checkpoints(path: str) -> None:
    """Ray deletes a trial's previous checkpoint as soon as it registers the next one (num_to_keep) but
    uploads the experiment state in the background, so after a crash the saved state can name a checkpoint
    that is gone. Put the trial's newest checkpoint in its place: ours carry epoch, history and RNG state,
    so the trial continues from the newer point instead of failing to restore. Beside it goes the epoch
    Ray's metrics reached (``trial.REPORTED_FILE``): the trial first reports the epochs the checkpoint
    holds beyond it, so its metrics match its checkpoint's epoch."""
    for restored in tune.ExperimentAnalysis(path).trials:
        checkpoint = restored.checkpoint
        if checkpoint is None:
            continue
        fs, missing = checkpoint.filesystem, checkpoint.path
        if fs.get_file_info(missing).type != pafs.FileType.NotFound:
            continue
        trial_dir = missing.rsplit("/", 1)[0]
        found = sorted(info.path for info in fs.get_file_info(pafs.FileSelector(trial_dir))
                       if info.base_name.startswith("checkpoint_") and info.type == pafs.FileType.Directory)
        if found:
            fs.create_dir(missing, recursive=True)
            pafs.copy_files(found[-1], missing, source_filesystem=fs, destination_filesystem=fs)
            with fs.open_output_stream(f"{missing}/{trial.REPORTED_FILE}") as handle:
                handle.write(json.dumps({"epoch": int((restored.last_result or {}).get("epoch", 0))}).encode())
            print(f"trial {restored.trial_id}: {missing.rsplit('/', 1)[1]} was deleted before the crash; "
                  f"continuing from {found[-1].rsplit('/', 1)[1]}", flush=True)
