"""Driver-side Tune callbacks: a one-line progress view, the trials file the analysis reads, the time budget.

``ProgressLine`` prints, every few seconds, trials done / running / pending / errored and the best
``val_acc`` per architecture, instead of Ray's tables. ``TrialsSnapshot`` writes ``launch.json`` once Tune
has saved its state and rewrites ``<experiment>/trials.json`` (see ``study/experiment.py``) whenever a trial
reports, finishes or fails, so ``study status`` and ``study report`` read a study, finished or still
running, without Ray. ``TimeBudget`` is ``--time-budget-s``: when it runs out it records the trials still
running or pending (``budget_cut.json``) and interrupts Tune the way Ctrl+C does (SIGUSR1), so Tune saves
them as unfinished and ``study resume`` trains them from their checkpoints. (Tune's own ``time_budget_s``
marks them TERMINATED, and a resume would never train them.)
"""
from __future__ import annotations

import os
import signal
import time

from ray import tune

from study import experiment
from study.search.searcher import METRIC


BUDGET_CUT = experiment.BUDGET_CUT


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

    def __init__(self, experiment_path: str, launch: dict | None = None, every_s: float = 2.0):
        self.experiment_path = experiment_path
        self.path = f"{experiment_path}/{experiment.TRIALS_FILE}"
        self.launch = launch
        self.every_s = every_s
        self._last = 0.0
        self._errors: dict[str, str] = {}
        self.cut: dict[str, int] = {}  # trial id -> last epoch, for trials the time budget interrupted

    def setup(self, **info):
        # Tune has saved tuner.pkl by now, so a name with a launch.json can always be resumed.
        launch_path = f"{self.experiment_path}/{experiment.LAUNCH_FILE}"
        if self.launch is not None and experiment.read_json(launch_path) is None:
            experiment.write_json(launch_path, self.launch)
        # A resume trains the trials a budget cut: from here on they are ordinary unfinished trials.
        self.cut = {}
        if experiment.read_json(f"{self.experiment_path}/{experiment.BUDGET_FILE}"):
            experiment.write_json(f"{self.experiment_path}/{experiment.BUDGET_FILE}", {})

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
        # How a trial ended is study.analysis.table.stop_reasons' rule, from this status and the results.
        status = BUDGET_CUT if trial.trial_id in self.cut else trial.status
        return {"trial_id": trial.trial_id, "arch": trial.config.get("arch"), "status": status,
                "num_failures": trial.num_failures, "config": dict(trial.config),
                "last_result": result, "error": self._error(trial)}

    def budget_reached(self, trials) -> dict[str, int]:
        """Record the trials still running or pending as cut by the budget, in budget_cut.json too."""
        self.cut = {t.trial_id: int((t.last_result or {}).get("epoch", 0)) for t in trials
                    if t.status not in ("TERMINATED", "ERROR")}
        experiment.write_json(f"{self.experiment_path}/{experiment.BUDGET_FILE}", self.cut)
        self._write(trials)
        return self.cut

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


class TimeBudget(tune.Callback):
    """``--time-budget-s``: interrupt Tune once the budget is spent, keeping the cut trials resumable.
    The budget counts from Tune's start. ``run`` always adds one (``budget_s`` None: no budget) so that
    ``resume``, whose callbacks come back from Tune's saved state, can set its own with ``for_resume``:
    a resume has no budget unless it is given ``--time-budget-s`` again."""

    _resume_budget_s: float | None = None
    _resuming = False

    def __init__(self, budget_s: float | None, snapshot: TrialsSnapshot, searcher=None):
        self.budget_s, self.snapshot, self.searcher = budget_s, snapshot, searcher
        self._start = time.time()
        self._fired = False

    @classmethod
    def for_resume(cls, budget_s: float | None) -> None:
        """Set the budget of this process's resumed study (call before ``Tuner.restore(...).fit()``)."""
        cls._resuming, cls._resume_budget_s = True, budget_s

    def setup(self, **info):
        self._start, self._fired = time.time(), False
        if TimeBudget._resuming:
            self.budget_s = TimeBudget._resume_budget_s

    def on_step_end(self, iteration, trials, **info):
        if self.budget_s is None or self._fired or time.time() - self._start < self.budget_s:
            return
        self._fired = True
        cut = self.snapshot.budget_reached(trials)
        if self.searcher is not None:  # Optuna hears "budget-cut" before Tune saves the searcher's state
            self.searcher.close_ended([t for t in trials if t.trial_id in cut])
        print(f"time budget of {self.budget_s:.0f}s reached: {len(cut)} trials cut "
              f"({', '.join(sorted(cut)) or 'none'}); `study resume` trains them", flush=True)
        # Tune's documented graceful stop (as Ctrl+C): it saves the experiment state with these trials
        # unfinished, then ends the run; the handler is Tune's own, installed for the run's duration.
        os.kill(os.getpid(), signal.SIGUSR1)
