"""Early stopping that compares like with like: one ASHA per architecture, all sharing one cluster.

    scheduler = ArchASHA({"cnn": 10, "lstm": 10, "fasttext": 10}, metric="val_acc", mode="max")
    tune.TuneConfig(scheduler=scheduler, callbacks=[...]) ; RunConfig(callbacks=[StopReasons(scheduler), ...])

Ray's single ``ASHAScheduler`` ranks every trial against every other at each rung, so an LSTM at epoch 1
is cut because a fastText trial reached a higher accuracy at epoch 1. ``ArchASHA`` routes each trial, by
its config's ``arch``, to an ASHA of that architecture alone (its own rungs, up to that architecture's
epochs); the trials of all architectures still run side by side on the same cluster (placement is
Tune's, in arrival order). An architecture that trains for a single epoch (a one-report baseline) gets
no ASHA: nothing can be learnt at a rung it never passes twice.

It remembers why a trial ended early. ``early_stopped(trial_id)`` is the searcher's way to tell Optuna
"pruned" instead of "complete"; ``StopReasons`` (a Tune callback) writes ``early_stopped: true`` into
the very result on which ASHA decided (false into every other), so ``trials.json`` and the report see it without Ray. Trials cut by
``--time-budget-s`` carry no such mark: the report tells them apart by their unfinished epochs.
"""
from __future__ import annotations

from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

MARK = "early_stopped"  # the result key StopReasons writes; study.analysis.table reads it


class ArchASHA(FIFOScheduler):
    """One ``AsyncHyperBandScheduler`` per architecture; trials without rungs run to their end."""

    def __init__(self, max_epochs: dict[str, int], *, metric: str, mode: str, grace_period: int = 1,
                 reduction_factor: float = 4):
        super().__init__()
        self._metric, self._mode = metric, mode
        self.ashas = {arch: AsyncHyperBandScheduler(time_attr="training_iteration", metric=metric, mode=mode,
                                                    max_t=epochs, grace_period=grace_period,
                                                    reduction_factor=reduction_factor)
                      for arch, epochs in max_epochs.items() if epochs > grace_period}
        self.members: dict[str, str] = {}  # trial id -> arch, for trials registered with their ASHA
        self.stopped: dict[str, int] = {}  # trial id -> the epoch at which ASHA stopped it

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode are fixed at construction; Tune's (none) must not override them

    def _asha(self, trial):
        return self.ashas.get(trial.config.get("arch"))

    def _known(self, controller, trial):
        """The trial's ASHA, registering the trial first when it arrived unseen (e.g. after a resume)."""
        asha = self._asha(trial)
        if asha is not None and trial.trial_id not in self.members:
            asha.on_trial_add(controller, trial)
            self.members[trial.trial_id] = trial.config["arch"]
        return asha

    def on_trial_add(self, controller, trial) -> None:
        self._known(controller, trial)

    def on_trial_result(self, controller, trial, result: dict) -> str:
        asha = self._known(controller, trial)
        if asha is None:
            return TrialScheduler.CONTINUE
        action = asha.on_trial_result(controller, trial, result)
        epoch = int(result.get("training_iteration", 0))
        # ASHA also answers STOP at max_t; only a stop before the trial's own last epoch is early.
        if action == TrialScheduler.STOP and epoch < int(trial.config.get("epochs", epoch + 1)):
            self.stopped[trial.trial_id] = epoch
        return action

    def on_trial_complete(self, controller, trial, result: dict) -> None:
        if self.members.pop(trial.trial_id, None) is not None:
            self._asha(trial).on_trial_complete(controller, trial, result)

    def on_trial_remove(self, controller, trial) -> None:
        if self.members.pop(trial.trial_id, None) is not None:
            self._asha(trial).on_trial_remove(controller, trial)

    def on_trial_error(self, controller, trial) -> None:
        self.on_trial_remove(controller, trial)

    def replay(self, trial, rows: list[dict], finished: bool) -> None:
        """Put a restored trial's recorded results back into its ASHA's rungs (``rebuild.SchedulerRebuild``:
        Tune does not save the scheduler). The replay's decisions are ignored (they were acted on, or not,
        before the crash); whether ASHA stopped the trial is read from ``MARK`` in the rows, as it was."""
        asha = self._known(None, trial)
        for row in rows:
            if asha is not None:
                asha.on_trial_result(None, trial, row)
            if row.get(MARK):
                self.stopped[trial.trial_id] = int(row.get("training_iteration", 0))
        if finished and rows:
            self.on_trial_complete(None, trial, rows[-1])

    def early_stopped(self, trial_id: str) -> bool:
        return trial_id in self.stopped

    def debug_string(self) -> str:
        return f"one ASHA per architecture ({', '.join(self.ashas) or 'none'}); stopped early: {len(self.stopped)}"


class StopReasons(tune.Callback):
    """Adds ``early_stopped`` (true on the result on which ASHA stopped the trial, false on every other)
    to each result: callbacks may edit results, and Tune stores the edited one as the trial's last
    result. Put it before the callbacks that write files."""

    def __init__(self, scheduler: ArchASHA):
        self.scheduler = scheduler

    def on_trial_result(self, iteration, trials, trial, result, **info):
        result[MARK] = self.scheduler.early_stopped(trial.trial_id)
