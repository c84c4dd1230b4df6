"""The searcher: one seeded Optuna study per architecture, exactly K trials each, round-robin.

Objectives (``study run --objective``):
    front      (default) two directions per study: maximise ``val_acc``, minimise the cost (``--cost``,
               default ``train_time_s``), through ``OptunaSearch`` with metric and mode lists
    accuracy   one direction: maximise ``val_acc``

The sampler is Optuna's TPE in both cases (multi-objective TPE splits good from bad trials by
non-domination rank, then by hypervolume contribution). NSGA-II was the alternative; its first generation
is ``population_size`` (default 50) random trials, more than a study of a few dozen trials per
architecture ever runs, so it would be random search here; docs/benchmarks.md has the measurement.
TPE models after ``startup_trials(K)`` random trials (a third of the budget, at least 3; Optuna's
default of 10 would leave small studies random), with the constant liar so that trials running side by
side do not all draw the same point.

What Optuna learns from each Tune trial (``OptunaSearch``'s own defaults would be wrong here: it tells
COMPLETE with the last values for any trial that reported, and in multi-objective mode drops every
intermediate result):
    finished         COMPLETE with the final values
    early-stopped    PRUNED (ASHA, ``scheduler.ArchASHA``, judged it worse than its peers at a rung).
                     With one objective the value at the stopping rung is reported first, so TPE ranks
                     it among pruned trials by how far it got and how well; with two, TPE puts pruned
                     trials in its "bad" group. Either way its early value is never taken as final.
    budget-cut       FAIL: cut by ``--time-budget-s`` (or an interrupted study), not by its merit; samplers
                     ignore FAIL trials, so an unlucky cut teaches nothing
    never-trained    FAIL: removed before it reported an epoch
    failed           FAIL: the trial raised
When the time budget runs out (``progress.TimeBudget``), the trials it cuts are told ``budget-cut``
before Tune saves its state (``close_ended``); ``CloseAtEnd`` does the same for any trial still untold
when a study ends, so none stays RUNNING. A trial told FAIL that Ray trains again (a resume re-runs an
errored trial, or trains one the budget cut) gets its outcome mirrored as a new Optuna trial
(``optuna_sync.RerunSync``, by the same mapping). Each Optuna trial carries user attributes
``tune_trial_id`` (``optuna_sync.TAG``) and ``stop_reason`` (the same words as the report's
``stop_reason`` column), so ``optuna.load_study(...).trials`` says how each one ended.

Balanced coverage: keys a space marks ``compare`` get their values from ``spaces.balanced_assignments``,
enqueued into the Optuna study before each ask (``study.enqueue_trial``); the sampler fills in the rest.

Why exactly K per space: the architectures are handed out round-robin and an architecture is refused
once it has K trials; the counters are saved by Tune together with the trial list, so a resumed study
continues the same count and never repeats or adds a trial. All studies live in
``<experiment>/optuna.db`` when the experiment folder is local.
"""
from __future__ import annotations

import math
import pickle

import optuna
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from study.search import optuna_sync
from study.search import spaces as spaces_mod
from study.search.objectives import METRIC, MODE, OBJECTIVES, objective_metrics  # noqa: F401 (re-exported)
from study.train.config import TrainConfig

def startup_trials(per_space: int) -> int:
    return max(3, per_space // 3)


class ArchSearcher(Searcher):
    """Round-robin over architectures; one seeded OptunaSearch (TPE) per architecture, K trials each."""

    def __init__(self, spaces: list, per_space: int, *, seed: int, storage_url: str | None,
                 study_name: str, overrides: dict, objective: str = "accuracy", cost: str = "train_time_s",
                 scheduler=None):
        metrics, modes = objective_metrics(objective, cost)
        metric, mode = (metrics, modes) if objective == "front" else (METRIC, MODE)
        super().__init__(metric=metric, mode=mode)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage = (optuna.storages.RDBStorage(storage_url) if storage_url
                        else optuna.storages.InMemoryStorage())
        self.spaces = {s.arch: s for s in spaces}
        self.order = [s.arch for s in spaces]
        self.per_space = per_space
        self.metrics = metrics
        self.fixed = {s.arch: s.fixed_with(overrides) for s in spaces}
        self.counts = {arch: 0 for arch in self.order}
        self.arch_of: dict[str, str] = {}
        self.number_of: dict[str, int] = {}  # Tune trial id -> its Optuna trial number in its arch's study
        self.planned: dict[str, int] = {}  # Tune trial id -> the epochs it would train if never stopped
        self.told: set[str] = set()  # Tune trial ids whose ending Optuna has been told
        self.storage_url = storage_url
        self.scheduler = scheduler  # tells early-stopped trials apart; not saved (Tune keeps its own)
        self.study_names = {s.arch: f"{study_name}.{s.arch}" for s in spaces}
        self.searchers = {
            s.arch: OptunaSearch(space=spaces_mod.optuna_distributions(s), metric=metric, mode=mode,
                                 sampler=optuna.samplers.TPESampler(
                                     seed=seed + i, n_startup_trials=startup_trials(per_space),
                                     constant_liar=True),
                                 storage=self.storage, study_name=self.study_names[s.arch])
            for i, s in enumerate(spaces)}
        self.ledger = optuna_sync.Ledger(self.storage, storage_url, self.study_names)  # optuna.db == Ray's trials

    @property
    def directions(self) -> int:
        return len(self.metrics)

    def suggest(self, trial_id: str):
        open_ = [a for a in self.order if self.counts[a] < self.per_space]
        if not open_:
            return Searcher.FINISHED
        arch = min(open_, key=lambda a: self.counts[a])  # ties resolve in file order: round-robin
        number = self.counts[arch]
        balanced = spaces_mod.balanced_assignments(self.spaces[arch], number + 1)[number]
        if balanced:
            self._study(arch).enqueue_trial(balanced)  # the next ask takes these values, samples the rest
        config = {**self.fixed[arch], **self.searchers[arch].suggest(trial_id)}
        self.counts[arch] += 1
        self.arch_of[trial_id] = arch
        self.planned[trial_id] = TrainConfig.from_flat(config).epochs
        self.number_of[trial_id] = self.ledger.tag(arch, trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.arch_of and METRIC in result and not self.ledger.on_result(trial_id, result):
            self.searchers[self.arch_of[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.arch_of or self.ledger.on_complete(trial_id, result, error):
            return  # a re-run of a trial Optuna holds as FAIL: RerunSync mirrors its outcome
        if trial_id in self.told:
            return
        self._tell(trial_id, result, self.outcome(trial_id, result, error))

    def _tell(self, trial_id: str, result: dict | None, reason: str) -> None:
        """Tell Optuna how the trial ended, by the mapping of the module docstring."""
        self.told.add(trial_id)
        searcher = self.searchers[self.arch_of[trial_id]]
        self._set_attr(trial_id, optuna_sync.STOP_REASON, reason)
        if reason == "finished":
            searcher.on_trial_complete(trial_id, result)
        elif reason == "early-stopped":
            if self.directions == 1:  # Tune withholds the stopping result from the searcher: report it
                searcher.on_trial_result(trial_id, result)
            searcher.on_trial_complete(trial_id, None, error=False)  # no values -> PRUNED
        else:
            searcher.on_trial_complete(trial_id, None, error=True)  # -> FAIL
            self.ledger.told_fail(trial_id)  # if Ray trains it again, RerunSync mirrors the outcome

    def close_ended(self, trials) -> None:
        """Tell Optuna about trials that end without Tune telling the searcher: the ones ``--time-budget-s``
        (``progress.TimeBudget``) or an interrupt leaves unfinished are ``budget-cut`` (``never-trained``
        without an epoch) and FAIL until a resume trains them; a finished one not yet told by its outcome."""
        for trial in trials:
            tid = trial.trial_id
            if tid not in self.arch_of or tid in self.told or tid in self.ledger.finished:
                continue
            result = trial.last_result or None
            if trial.status in ("TERMINATED", "ERROR"):
                self._tell(tid, result, self.outcome(tid, result, trial.status == "ERROR"))
            else:
                self._tell(tid, result, "budget-cut" if self._epoch(result) >= 1 else "never-trained")

    @staticmethod
    def _epoch(result: dict | None) -> int:
        return int((result or {}).get("epoch") or (result or {}).get("training_iteration") or 0)

    def outcome(self, trial_id: str, result: dict | None, error: bool) -> str:
        """finished / early-stopped / budget-cut / never-trained / failed (see the module docstring)."""
        if error:
            return "failed"
        epoch = self._epoch(result)
        if epoch < 1:
            return "never-trained"
        if self.scheduler is not None and self.scheduler.early_stopped(trial_id):
            return "early-stopped"
        if epoch < self.planned[trial_id]:
            return "budget-cut"
        values = [result.get(m) for m in self.metrics]
        if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
            return "failed"  # Optuna cannot rank a missing or NaN objective
        return "finished"

    def _study(self, arch: str) -> optuna.Study:
        return optuna.load_study(study_name=self.study_names[arch], storage=self.storage)

    def _set_attr(self, trial_id: str, key: str, value) -> None:
        """A user attribute on the trial's Optuna trial (public storage API; the trial is still running)."""
        study_id = self.storage.get_study_id_from_name(self.study_names[self.arch_of[trial_id]])
        optuna_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, self.number_of[trial_id])
        self.storage.set_trial_user_attr(optuna_id, key, value)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump({k: v for k, v in self.__dict__.items() if k != "scheduler"}, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))
        self.close_orphans()

    def close_orphans(self) -> None:
        """Optuna trials asked after Tune's last snapshot belong to no Tune trial: closed as FAIL
        (``optuna_sync.Ledger.close_orphans``: the one rule, by the trial's tag)."""
        self.ledger.close_orphans()


class CloseAtEnd(tune.Callback):
    """At the end of a study, ``ArchSearcher.close_ended``: no Optuna trial stays RUNNING (a safety net; the
    time budget tells the trials it cuts before Tune saves its state, see ``progress.TimeBudget``)."""

    def __init__(self, searcher: ArchSearcher):
        self.searcher = searcher

    def on_experiment_end(self, trials, **info):
        self.searcher.close_ended(trials)
