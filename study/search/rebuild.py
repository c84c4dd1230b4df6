"""Rebuild the early-stopping scheduler's state (``scheduler.ArchASHA``, one ASHA per architecture) on resume.

Tune saves the searcher's state with the experiment but not the scheduler's: after ``study resume`` ASHA
would start with empty rungs, so a resumed trial would be judged only against trials that report after
the resume, and early stopping would differ from an uninterrupted study without a word. ``SchedulerRebuild``
(a Tune callback holding the same scheduler object as the TuneConfig: both come back from ``tuner.pkl`` in
one pickle) replays, before the resumed study's first step, every restored trial's recorded results
(``result.json`` in its folder, in order) through ``ArchASHA.replay``: each into its architecture's ASHA
by the public ``on_trial_result``. The rungs then hold exactly what they held at the crash; decisions of
the replay are ignored (they were acted on, or not, before the crash), and which trials ASHA stopped is
read back from the ``early_stopped`` mark the results carry, so the searcher still tells Optuna PRUNED for
them. Finished trials are also completed so the scheduler lets go of them.
"""
from __future__ import annotations

import json
from pathlib import Path

from ray import tune


def recorded_results(trial_path: str | None) -> list[dict]:
    """The results a trial reported, oldest first (the JSON logger's ``result.json``); [] when unreadable.

    Only lines ended by a newline count: the last one may be half written (the driver is writing it, or was
    killed while it did), and a result the logger has not finished is not a result yet."""
    if not trial_path or "://" in trial_path:
        return []  # remote storage: the rungs start empty, as Tune's own resume does
    path = Path(trial_path) / "result.json"
    if not path.exists():
        return []
    complete = path.read_text().split("\n")[:-1]
    return [json.loads(line) for line in complete if line.strip()]


class SchedulerRebuild(tune.Callback):
    """Replays restored trials' results into ``scheduler`` once, before the first step of a resumed study."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self._done = False

    def setup(self, **info):
        self._done = False  # once per session: run and every resume

    def on_step_begin(self, iteration, trials, **info):
        if self._done:
            return
        self._done = True
        for trial in trials:
            rows = recorded_results(trial.path) if trial.last_result else []
            self.scheduler.replay(trial, rows, finished=trial.status == "TERMINATED")
