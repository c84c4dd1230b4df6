"""Keep ``optuna.db`` consistent with Ray Tune's trials across errors, re-runs and crashes.

The rule it keeps: every trial Ray finished with metrics is exactly one COMPLETE (or PRUNED) Optuna trial
with the same value, tagged with the Ray trial id (user attribute ``ray_trial_id``), and no Optuna trial is
left RUNNING once its Ray trial is gone.

Why a module of its own: Ray's ``OptunaSearch`` tells an errored trial FAIL and adds it to its completed
set, so when ``study resume`` re-runs that trial its results are dropped ("already finished") and
Optuna would keep FAIL while Ray shows the trial finished with metrics. Optuna's finished trials are
immutable, so the FAIL stays (it records the failed attempt; TPE ignores FAIL trials) and the re-run's
outcome is added as a new finished trial with the same parameters and its per-epoch values
(``Study.add_trial``), tagged ``ray_trial_id`` and ``rerun_of`` (the FAIL trial's number). TPE then learns
from it like any other trial. Only public Optuna APIs are used; an in-memory Optuna study (a remote
``--storage-path``) is not synchronised.

    ledger = Ledger(storage_url, {"cnn": "demo.cnn"}, metric="val_acc")   # in the searcher
    ledger.tag("cnn", trial_id)                       # right after OptunaSearch.suggest asked Optuna
    if not ledger.on_result(trial_id, result): ...    # False: forward to OptunaSearch as usual
    if not ledger.on_complete(trial_id, result, error): ...
    RerunSync(storage_url, "demo", "val_acc")         # a Tune callback: mirrors re-runs into Optuna
    problems = mismatches(experiment_path, name)      # [] when optuna.db agrees with trials.json
"""
from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState
from ray import tune

RAY_ID = "ray_trial_id"
RERUN_OF = "rerun_of"


class Ledger:
    """The searcher's record of what Optuna was told; pickled with the searcher's state."""

    def __init__(self, storage_url: str | None, study_names: dict[str, str], metric: str | list[str]):
        self.storage_url = storage_url
        self.study_names = dict(study_names)
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        self.failed: dict[str, str] = {}  # Ray trial id -> arch, for trials Optuna holds as FAIL
        # Trials Optuna finished after Tune's last snapshot (a crash in between): Tune runs them again,
        # and OptunaSearch would raise on reporting to a finished Optuna trial. Filled on restore.
        self.finished: set[str] = set()
        self.arch_of: dict[str, str] = {}
        self._storage = None  # one SQLAlchemy engine per driver session, not pickled

    def __getstate__(self):
        return {**self.__dict__, "_storage": None}

    def _study(self, arch: str) -> optuna.Study:
        return optuna.load_study(study_name=self.study_names[arch], storage=self.storage_url)

    def tag(self, arch: str, trial_id: str) -> None:
        """Tag the trial Optuna just asked (the study's newest: one driver asks one at a time)."""
        self.arch_of[trial_id] = arch
        if not self.storage_url:
            return
        if self._storage is None:
            self._storage = optuna.storages.RDBStorage(self.storage_url)
        storage = self._storage
        study_id = storage.get_study_id_from_name(self.study_names[arch])
        number = storage.get_n_trials(study_id) - 1
        storage.set_trial_user_attr(storage.get_trial_id_from_study_id_trial_number(study_id, number),
                                    RAY_ID, trial_id)

    def on_result(self, trial_id: str, result: dict) -> bool:
        """True when Optuna already finished this trial (a re-run of a FAIL trial, or one finished after
        the snapshot a resume restored): OptunaSearch would drop the result or raise on it."""
        return trial_id in self.failed or trial_id in self.finished

    def on_complete(self, trial_id: str, result: dict | None, error: bool) -> bool:
        """True when this completion was handled here; False: forward it to OptunaSearch. A re-run's
        completion is mirrored into Optuna by ``RerunSync``, which sees every completion (Tune's
        ``ConcurrencyLimiter`` drops a re-run's completion before it reaches any searcher)."""
        if trial_id in self.finished:
            return True  # Optuna holds its outcome already; RerunSync mirrors it if that was a FAIL
        if trial_id not in self.failed:
            if error:
                self.failed[trial_id] = self.arch_of.get(trial_id, "")
            return False  # OptunaSearch tells COMPLETE, PRUNED or FAIL as usual
        if not error:
            self.failed.pop(trial_id, None)
        return True

    def close_orphans(self) -> None:
        """Optuna trials asked after Tune's last snapshot belong to no Tune trial (a crash lost them): mark
        them FAIL so no trial shows RUNNING forever. Known trials are the ones the restored state tagged.
        Known trials Optuna finished after that snapshot are noted in ``finished`` (see ``on_result``)."""
        if not self.storage_url:
            return  # in-memory studies come back from the snapshot itself: no orphan can exist
        for arch in self.study_names:
            study = self._study(arch)
            for frozen in study.get_trials(deepcopy=False):
                ray_id = frozen.user_attrs.get(RAY_ID)
                if frozen.state == TrialState.RUNNING and ray_id not in self.arch_of:
                    study.tell(frozen.number, state=TrialState.FAIL)
                elif frozen.state.is_finished() and ray_id in self.arch_of and ray_id not in self.failed:
                    self.finished.add(ray_id)

def mirror_rerun(storage_url: str, name: str, trial_id: str, values: list, curve: dict[int, float]) -> bool:
    """Add a re-run's outcome as a new finished Optuna trial with its FAIL attempt's parameters, unless
    Optuna already holds a finished trial for ``trial_id`` (idempotent). True when one was added."""
    for study in _studies(storage_url, name):
        mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(RAY_ID) == trial_id]
        if not mine:
            continue
        fails = [t for t in mine if t.state == TrialState.FAIL]
        if not fails or any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in mine):
            return False
        done = bool(values) and all(v is not None for v in values)
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE if done else TrialState.PRUNED,
            values=[float(v) for v in values] if done else None,
            params=fails[-1].params, distributions=fails[-1].distributions, intermediate_values=curve or None,
            user_attrs={RAY_ID: trial_id, RERUN_OF: fails[-1].number}))
        return True
    return False


class RerunSync(tune.Callback):
    """Driver callback: when a trial finishes, mirror it into Optuna if Optuna holds it only as FAIL."""

    def __init__(self, storage_url: str | None, name: str, metric: str | list[str]):
        self.storage_url, self.name = storage_url, name
        self.metrics = [metric] if isinstance(metric, str) else list(metric)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if not self.storage_url or not trial.num_failures:
            return  # only a trial that failed before can be a FAIL in Optuna: no database work otherwise
        from study.search.rebuild import recorded_results

        last = trial.last_result or {}
        curve = {int(r["training_iteration"]): float(r[self.metrics[0]]) for r in recorded_results(trial.path)
                 if self.metrics[0] in r and "training_iteration" in r}
        mirror_rerun(self.storage_url, self.name, trial.trial_id, [last.get(m) for m in self.metrics], curve)


def _studies(storage_url: str, name: str):
    for summary in optuna.get_all_study_summaries(storage_url):
        if summary.study_name.startswith(f"{name}."):
            yield optuna.load_study(study_name=summary.study_name, storage=storage_url)


def close_trials(storage_url: str, name: str, trial_ids: set[str]) -> None:
    """End the Optuna records of Ray trials that will not train again (``resume --keep-budget-cut``):
    PRUNED at their last reported value, FAIL when they reported nothing."""
    for study in _studies(storage_url, name):
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.user_attrs.get(RAY_ID) in trial_ids:
                study.tell(frozen.number, state=TrialState.PRUNED if frozen.intermediate_values else TrialState.FAIL)


def mismatches(experiment_path: str, name: str) -> list[str]:
    """Where ``optuna.db`` disagrees with ``trials.json``: [] when every TERMINATED Ray trial with a
    val_acc is exactly one COMPLETE/PRUNED Optuna trial with that value and no Optuna trial is RUNNING."""
    from study import experiment

    url = f"sqlite:///{experiment_path}/{experiment.OPTUNA_FILE}"
    finished: dict[str, list] = {}
    problems = []
    for study in _studies(url, name):
        for frozen in study.get_trials(deepcopy=False):
            if frozen.state == TrialState.RUNNING:
                problems.append(f"{study.study_name} trial {frozen.number} is RUNNING")
            elif frozen.state in (TrialState.COMPLETE, TrialState.PRUNED):
                finished.setdefault(frozen.user_attrs.get(RAY_ID), []).append(frozen)
    data = experiment.read_json(f"{experiment_path}/{experiment.TRIALS_FILE}") or {"trials": []}
    for trial in data["trials"]:
        acc = (trial.get("last_result") or {}).get("val_acc")
        if trial["status"] != "TERMINATED" or acc is None:
            continue
        told = finished.get(trial["trial_id"], [])
        if len(told) != 1:
            problems.append(f"Ray trial {trial['trial_id']} is {len(told)} finished Optuna trials")
        elif not any(math.isclose(v, acc, abs_tol=1e-9) for v in (told[0].values or [])):
            problems.append(f"Ray trial {trial['trial_id']}: val_acc {acc} but Optuna holds {told[0].values}")
    return problems
