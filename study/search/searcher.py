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
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from study.search import optuna_sync
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
        self.ledger = optuna_sync.Ledger(storage_url, self.study_names, METRIC)  # optuna.db == Ray's trials

    def suggest(self, trial_id: str):
        open_ = [a for a in self.order if self.counts[a] < self.per_space]
        if not open_:
            return Searcher.FINISHED
        arch = min(open_, key=lambda a: self.counts[a])  # ties resolve in file order: round-robin
        params = self.searchers[arch].suggest(trial_id)
        self.counts[arch] += 1
        self.arch_of[trial_id] = arch
        self.ledger.tag(arch, trial_id)
        return {**self.fixed[arch], **params}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.arch_of and METRIC in result and not self.ledger.on_result(trial_id, result):
            self.searchers[self.arch_of[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.arch_of and not self.ledger.on_complete(trial_id, result, error):
            self.searchers[self.arch_of[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))
        self.close_orphans()

    def close_orphans(self) -> None:
        """Optuna trials asked after Tune's last snapshot belong to no Tune trial: closed as FAIL."""
        self.ledger.close_orphans()
