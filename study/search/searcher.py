"""The searcher: one seeded Optuna TPE study per architecture, exactly K trials each, round-robin.

Why exactly K per space: ``ArchSearcher`` hands out architectures round-robin and refuses an architecture
once it has K trials; its counters are saved by Tune together with the trial list, so a resumed study
continues the same count and never repeats or adds a trial. One Optuna study per architecture keeps TPE's
good/bad split within comparable trials; all of them live in ``<experiment>/optuna.db`` when the
experiment folder is local.
"""
from __future__ import annotations

import pickle

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from study.search import spaces as spaces_mod

METRIC, MODE = "val_acc", "max"


class ArchSearcher(Searcher):
    """Round-robin over architectures; one seeded OptunaSearch (TPE) per architecture, K trials each."""

    def __init__(self, spaces: list, per_space: int, *, seed: int, storage_url: str | None,
                 study_name: str, overrides: dict):
        super().__init__(metric=METRIC, mode=MODE)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(storage_url) if storage_url else None
        self.order = [s.arch for s in spaces]
        self.per_space = per_space
        self.fixed = {s.arch: {**s.fixed, **overrides, "arch": s.arch} for s in spaces}
        self.counts = {arch: 0 for arch in self.order}
        self.arch_of: dict[str, str] = {}
        self.storage_url = storage_url
        self.study_names = {s.arch: f"{study_name}.{s.arch}" for s in spaces}
        self.searchers = {
            s.arch: OptunaSearch(space=spaces_mod.optuna_distributions(s), metric=METRIC, mode=MODE,
                                 sampler=optuna.samplers.TPESampler(seed=seed + i), storage=storage,
                                 study_name=self.study_names[s.arch])
            for i, s in enumerate(spaces)}

    def suggest(self, trial_id: str):
        open_ = [a for a in self.order if self.counts[a] < self.per_space]
        if not open_:
            return Searcher.FINISHED
        arch = min(open_, key=lambda a: self.counts[a])  # ties resolve in file order: round-robin
        params = self.searchers[arch].suggest(trial_id)
        self.counts[arch] += 1
        self.arch_of[trial_id] = arch
        return {**self.fixed[arch], **params}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.arch_of and METRIC in result:
            self.searchers[self.arch_of[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.arch_of:
            self.searchers[self.arch_of[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))
        self.close_orphans()

    def close_orphans(self) -> None:
        """Optuna trials asked after Tune's last snapshot belong to no Tune trial: mark them FAIL so the
        SQLite study (and optuna-dashboard) shows no trial running forever after a crash. Each suggestion
        asks Optuna exactly once, so an architecture's first ``counts[arch]`` trial numbers are the ones
        Tune knows; a RUNNING trial numbered beyond them is an orphan."""
        if not self.storage_url:
            return  # in-memory studies come back from the snapshot itself: no orphan can exist
        for arch, name in self.study_names.items():
            study = optuna.load_study(study_name=name, storage=self.storage_url)
            for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if frozen.number >= self.counts[arch]:
                    study.tell(frozen.number, state=TrialState.FAIL)
