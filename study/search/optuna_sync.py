"""Keep ``optuna.db`` consistent with Ray Tune's trials across errors, re-runs and crashes.

The rule it keeps: every trial Ray finished with metrics is exactly one COMPLETE or PRUNED Optuna trial,
by the searcher's outcome -> state mapping (``searcher.py``: finished -> COMPLETE with the same values;
early-stopped -> PRUNED, at the same last intermediate value with one objective, without values with
two), tagged with the Tune trial id (user attribute ``tune_trial_id``, ``TAG``); a trial the time budget
cut is FAIL with ``stop_reason`` budget-cut or never-trained until a resume trains it; and no Optuna
trial is left RUNNING once its Ray trial is gone.

Why a module of its own: Ray's ``OptunaSearch`` tells an errored trial FAIL and adds it to its completed
set, so when ``study resume`` re-runs that trial its results are dropped ("already finished") and
Optuna would keep FAIL while Ray shows the trial finished with metrics. Optuna's finished trials are
immutable, so the FAIL stays (it records the failed attempt; TPE ignores FAIL trials) and the re-run's
outcome is added as a new finished trial with the same parameters and its per-epoch values
(``Study.add_trial``), tagged ``tune_trial_id``, ``stop_reason`` and ``rerun_of`` (the FAIL trial's
number). TPE then learns from it like any other trial. A trial the time budget cut is the same case: told
FAIL (budget-cut) at the cut, its outcome mirrored once a resume has trained it. Only public Optuna APIs are used; an in-memory Optuna study (a remote
``--storage-path``) is not synchronised.

    ledger = Ledger(storage, storage_url, {"cnn": "demo.cnn"})   # in the searcher
    number = ledger.tag("cnn", trial_id)              # right after OptunaSearch.suggest asked Optuna
    if not ledger.on_result(trial_id, result): ...    # False: forward to OptunaSearch as usual
    if not ledger.on_complete(trial_id, result, error): ...
    ledger.told_fail(trial_id)                        # the searcher told FAIL: a later run is mirrored
    RerunSync(searcher, "demo")                       # a Tune callback: mirrors re-runs into Optuna
    problems = mismatches(experiment_path, name)      # [] when optuna.db agrees with trials.json
"""
from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState
from ray import tune

TAG = "tune_trial_id"  # the one user attribute naming an Optuna trial's Tune trial
STOP_REASON = "stop_reason"  # how the trial ended (searcher.ArchSearcher.outcome's words)
RERUN_OF = "rerun_of"
WAITING = ("budget-cut", "never-trained")  # FAIL reasons a resume trains away


class Ledger:
    """The searcher's record of what Optuna was told; pickled with the searcher's state."""

    def __init__(self, storage, storage_url: str | None, study_names: dict[str, str]):
        self.storage = storage  # the searcher's Optuna storage (RDB for a local experiment, else in memory)
        self.storage_url = storage_url
        self.study_names = dict(study_names)
        self.failed: dict[str, str] = {}  # Tune trial id -> arch, for trials Optuna holds as FAIL
        # Trials Optuna finished after Tune's last snapshot (a crash in between): Tune runs them again,
        # and OptunaSearch would raise on reporting to a finished Optuna trial. Filled on restore.
        self.finished: set[str] = set()
        self.arch_of: dict[str, str] = {}

    def _study(self, arch: str) -> optuna.Study:
        return optuna.load_study(study_name=self.study_names[arch], storage=self.storage)

    def tag(self, arch: str, trial_id: str) -> int:
        """Tag the trial Optuna just asked and return its number: the newest RUNNING trial without a tag (one
        driver asks one at a time, and a restore closed the orphans first). Not the K-th trial: orphans a
        crash left hold numbers, and an ask may take an older enqueued (WAITING) trial."""
        self.arch_of[trial_id] = arch
        study_id = self.storage.get_study_id_from_name(self.study_names[arch])
        untagged = [t.number for t in self.storage.get_all_trials(study_id, deepcopy=False,
                                                                   states=(TrialState.RUNNING,))
                    if TAG not in t.user_attrs]
        number = max(untagged) if untagged else self.storage.get_n_trials(study_id) - 1
        self.storage.set_trial_user_attr(self.storage.get_trial_id_from_study_id_trial_number(study_id, number),
                                         TAG, trial_id)
        return number

    def on_result(self, trial_id: str, result: dict) -> bool:
        """True when Optuna already finished this trial (a re-run of a FAIL trial, or one finished after
        the snapshot a resume restored): OptunaSearch would drop the result or raise on it."""
        return trial_id in self.failed or trial_id in self.finished

    def told_fail(self, trial_id: str) -> None:
        """The searcher told Optuna FAIL (failed, budget-cut, never-trained): Ray may train it again."""
        self.failed[trial_id] = self.arch_of.get(trial_id, "")

    def on_complete(self, trial_id: str, result: dict | None, error: bool) -> bool:
        """True when this completion is not the searcher's to tell: Optuna finished the trial already (a
        re-run of a FAIL trial, mirrored by ``RerunSync``, which sees every completion: Tune's
        ``ConcurrencyLimiter`` drops a re-run's completion before it reaches any searcher)."""
        if trial_id in self.finished:
            return True  # Optuna holds its outcome already; RerunSync mirrors it if that was a FAIL
        return trial_id in self.failed  # False: the searcher tells it by its outcome

    def close_orphans(self) -> None:
        """The one orphan rule: Optuna trials asked after Tune's last snapshot belong to no Tune trial (a
        crash lost them, or killed the driver between ask and tag): FAIL, so none shows RUNNING forever.
        Known trials are the ones the restored state tagged. Known trials Optuna finished after that
        snapshot are noted in ``finished`` (see ``on_result``)."""
        if not self.storage_url:
            return  # in-memory studies come back from the snapshot itself: no orphan can exist
        for arch in self.study_names:
            study = self._study(arch)
            for frozen in study.get_trials(deepcopy=False):
                tune_id = frozen.user_attrs.get(TAG)
                if frozen.state == TrialState.RUNNING and tune_id not in self.arch_of:
                    study.tell(frozen.number, state=TrialState.FAIL)
                elif frozen.state.is_finished() and tune_id in self.arch_of and tune_id not in self.failed:
                    self.finished.add(tune_id)


def mirror_rerun(storage_url: str, name: str, trial_id: str, values: list, curve: dict[int, float],
                 reason: str = "finished") -> bool:
    """Add a re-run's outcome (``reason``: finished -> COMPLETE with ``values``, early-stopped -> PRUNED
    with its ``curve``) as a new Optuna trial with its FAIL attempt's parameters, unless Optuna already
    holds a finished trial for ``trial_id`` (idempotent). True when one was added."""
    for study in _studies(storage_url, name):
        mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(TAG) == trial_id]
        if not mine:
            continue
        fails = [t for t in mine if t.state == TrialState.FAIL]
        if not fails or any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in mine):
            return False
        done = reason == "finished"
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE if done else TrialState.PRUNED,
            values=[float(v) for v in values] if done else None,
            params=fails[-1].params, distributions=fails[-1].distributions, intermediate_values=curve or None,
            user_attrs={TAG: trial_id, STOP_REASON: reason, RERUN_OF: fails[-1].number}))
        return True
    return False


class RerunSync(tune.Callback):
    """Driver callback: when a trial Optuna holds only as FAIL finishes (a re-run of an errored trial, a
    budget-cut trial a resume trained), mirror its outcome into Optuna by the searcher's mapping."""

    def __init__(self, searcher, name: str):
        self.searcher, self.name = searcher, name

    def on_trial_complete(self, iteration, trials, trial, **info):
        searcher = self.searcher
        ledger = searcher.ledger
        if not searcher.storage_url or trial.trial_id not in searcher.arch_of:
            return
        if not (trial.num_failures or trial.trial_id in ledger.failed or trial.trial_id in ledger.finished):
            return  # only a trial told FAIL before can be a FAIL in Optuna: no database work otherwise
        last = trial.last_result or {}
        reason = searcher.outcome(trial.trial_id, last, False)
        if reason not in ("finished", "early-stopped"):
            return  # FAIL again (cut again, NaN objective): the FAIL attempt says it
        curve = {}
        if searcher.directions == 1:  # multi-objective Optuna trials hold no intermediate values
            from study.search.rebuild import recorded_results

            metric = searcher.metrics[0]
            curve = {int(r["training_iteration"]): float(r[metric]) for r in recorded_results(trial.path)
                     if metric in r and "training_iteration" in r}
        mirror_rerun(searcher.storage_url, self.name, trial.trial_id,
                     [last.get(m) for m in searcher.metrics], curve, reason)


def _studies(storage_url: str, name: str):
    for summary in optuna.get_all_study_summaries(storage_url):
        if summary.study_name.startswith(f"{name}."):
            yield optuna.load_study(study_name=summary.study_name, storage=storage_url)


def close_trials(storage_url: str, name: str, trial_ids: set[str]) -> None:
    """End the Optuna records of Tune trials that will not train again (``resume --keep-budget-cut``): the
    budget cut them, so FAIL with stop_reason budget-cut (never-trained when they reported nothing), as
    the searcher tells such trials; ones told already stay as they are."""
    storage = optuna.storages.RDBStorage(storage_url)
    for study in _studies(storage_url, name):
        study_id = storage.get_study_id_from_name(study.study_name)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.user_attrs.get(TAG) in trial_ids:
                reason = "budget-cut" if frozen.intermediate_values else "never-trained"
                storage.set_trial_user_attr(storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number),
                                            STOP_REASON, reason)
                study.tell(frozen.number, state=TrialState.FAIL)


def mismatches(experiment_path: str, name: str) -> list[str]:
    """Where ``optuna.db`` disagrees with ``trials.json``; [] when they agree (the module's rule): no Optuna
    trial RUNNING; every TERMINATED Tune trial with a val_acc exactly one COMPLETE or PRUNED Optuna trial
    (COMPLETE: the same val_acc; PRUNED: the same last intermediate value with one objective, no values
    with two), or only FAIL when its stop_reason says why (budget-cut or never-trained before a resume
    trained it, failed for an objective Optuna cannot rank); every BUDGET_CUT trial FAIL for that reason."""
    from study import experiment

    url = f"sqlite:///{experiment_path}/{experiment.OPTUNA_FILE}"
    finished: dict[str, list] = {}
    failed: dict[str, list[str]] = {}
    problems = []
    for study in _studies(url, name):
        for frozen in study.get_trials(deepcopy=False):
            tune_id = frozen.user_attrs.get(TAG)
            if frozen.state == TrialState.RUNNING:
                problems.append(f"{study.study_name} trial {frozen.number} is RUNNING")
            elif frozen.state in (TrialState.COMPLETE, TrialState.PRUNED):
                finished.setdefault(tune_id, []).append(frozen)
            elif frozen.state == TrialState.FAIL:
                failed.setdefault(tune_id, []).append(frozen.user_attrs.get(STOP_REASON))
    data = experiment.read_json(f"{experiment_path}/{experiment.TRIALS_FILE}") or {"trials": []}
    for trial in data["trials"]:
        tid, acc = trial["trial_id"], (trial.get("last_result") or {}).get("val_acc")
        told = finished.get(tid, [])
        if trial["status"] == experiment.BUDGET_CUT:
            if told or not set(failed.get(tid, [])) & set(WAITING):
                problems.append(f"Tune trial {tid} was cut by the budget but Optuna holds "
                                f"{[t.state.name for t in told]} / FAIL {failed.get(tid, [])}")
        elif trial["status"] == "TERMINATED" and acc is not None:
            problems += _finished_mismatch(tid, float(acc), told, failed.get(tid, []))
    return problems


def _finished_mismatch(tid: str, acc: float, told: list, fail_reasons: list) -> list[str]:
    if not told:
        if fail_reasons and fail_reasons[-1] == "failed" and not math.isfinite(acc):
            return []
        return [f"Tune trial {tid} finished with val_acc {acc} but Optuna holds no COMPLETE or PRUNED trial "
                f"for it (FAIL: {fail_reasons})"]
    if len(told) != 1:
        return [f"Tune trial {tid} is {len(told)} finished Optuna trials"]
    frozen = told[0]
    if frozen.state == TrialState.COMPLETE or frozen.values:
        seen = frozen.values[0] if frozen.values else None
    elif frozen.intermediate_values:  # one objective: the value at the stopping rung
        seen = frozen.intermediate_values[max(frozen.intermediate_values)]
    else:
        return []  # PRUNED without values: two objectives (Optuna holds no intermediate values then)
    if seen is None or not math.isclose(seen, acc, abs_tol=1e-9):
        return [f"Tune trial {tid}: val_acc {acc} but Optuna holds {seen} ({frozen.state.name})"]
    return []
