"""Driver-side Tune callbacks: a one-line progress view, and the trials file the analysis reads.

``ProgressLine`` prints, every few seconds, trials done / running / pending / errored and the best
``val_acc`` per architecture, instead of Ray's tables. ``TrialsSnapshot`` rewrites
``<experiment>/trials.json`` (see ``study/experiment.py``) whenever a trial reports, finishes or fails,
so ``study status`` and ``study report`` read a study, finished or still running, without Ray.
"""
from __future__ import annotations

import time

from ray import tune

from study import experiment
from study.search.searcher import METRIC


class ProgressLine(tune.Callback):
    """One line every few seconds instead of Ray's tables: counts by status and best val_acc per arch."""

    def __init__(self, total: int, every_s: float = 5.0):
        self.total, self.every_s = total, every_s
        self.best: dict[str, float] = {}
        self._last = 0.0
        self._start = time.time()

    def setup(self, **info):
        self._start = time.time()  # also on resume (the callback comes back from Tune's saved state)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        arch, value = result.get("arch"), result.get(METRIC)
        if arch is not None and value is not None:
            self.best[arch] = max(self.best.get(arch, float("-inf")), float(value))

    def on_step_end(self, iteration, trials, **info):
        if time.time() - self._last >= self.every_s:
            self._print(trials)

    def on_experiment_end(self, trials, **info):
        self._print(trials)

    def _print(self, trials) -> None:
        self._last = time.time()
        by = {}
        for trial in trials:
            by[trial.status] = by.get(trial.status, 0) + 1
        done, running, errored = by.get("TERMINATED", 0), by.get("RUNNING", 0), by.get("ERROR", 0)
        pending = self.total - done - running - errored  # includes trials the searcher has not made yet
        best = "  ".join(f"{a} {v:.3f}" for a, v in sorted(self.best.items())) or "-"
        print(f"[{time.time() - self._start:6.0f}s] {done}/{self.total} done, {running} running, "
              f"{pending} pending, {errored} errored | best {METRIC}: {best}", flush=True)


class TrialsSnapshot(tune.Callback):
    """Keeps ``trials.json`` in step with the trials: the file contract between search and analysis."""

    def __init__(self, experiment_path: str, every_s: float = 2.0):
        self.path = f"{experiment_path}/{experiment.TRIALS_FILE}"
        self.every_s = every_s
        self._last = 0.0
        self._errors: dict[str, str] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._write(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(trials)

    def on_step_end(self, iteration, trials, **info):
        if time.time() - self._last >= self.every_s:  # status changes that come with no event above
            self._write(trials)

    def on_experiment_end(self, trials, **info):
        self._write(trials)

    def _write(self, trials) -> None:
        self._last = time.time()
        experiment.write_json(self.path, {"written": self._last, "trials": [self._entry(t) for t in trials]})

    def _entry(self, trial) -> dict:
        result = {k: v for k, v in (trial.last_result or {}).items() if k != "config"}
        return {"trial_id": trial.trial_id, "arch": trial.config.get("arch"), "status": trial.status,
                "num_failures": trial.num_failures, "config": dict(trial.config), "last_result": result,
                "error": self._error(trial)}

    def _error(self, trial) -> str | None:
        """The last line of the trial's error (read once per trial), e.g. 'ValueError: lr must be > 0'."""
        if trial.status != "ERROR":
            self._errors.pop(trial.trial_id, None)  # a retried trial may fail differently next time
            return None
        if trial.trial_id not in self._errors:
            text = trial.get_error() or ""
            lines = [line.strip() for line in str(text).splitlines() if line.strip()]
            self._errors[trial.trial_id] = lines[-1] if lines else "unknown error"
        return self._errors[trial.trial_id]
