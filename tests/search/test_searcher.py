"""The searcher and the scheduler without a Tune run: real Optuna SQLite studies, real ASHA objects.

What Optuna learns from each way a trial can end, the two-direction studies of ``--objective front``,
the balanced compared keys, and ASHA that ranks a trial only against its own architecture.
"""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import optuna
import pytest
from ray.tune.schedulers import TrialScheduler

from study.search.scheduler import ArchASHA, StopReasons
from study.search.searcher import ArchSearcher, objective_metrics
from study.search.spaces import parse_space

SPACE = {"arch": "cnn", "fixed": {"epochs": 3, "max_len": 40}, "compare": ["freeze_embeddings", "embedding"],
         "search": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                    "freeze_embeddings": {"type": "categorical", "choices": [True, False]},
                    "embedding": {"type": "categorical", "choices": ["word2vec", "fasttext", "random"]}}}


def trial(trial_id: str, arch: str, epochs: int = 4):
    return SimpleNamespace(trial_id=trial_id, config={"arch": arch, "epochs": epochs})


def test_front_studies_have_two_directions_and_each_ending_is_told_as_it_happened(tmp_path):
    scheduler = ArchASHA({"cnn": 3}, metric="val_acc", mode="max")
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ArchSearcher([parse_space(SPACE)], 6, seed=1, storage_url=db, study_name="s", overrides={},
                            objective="front", cost="train_time_s", scheduler=scheduler)
    configs = [searcher.suggest(f"t{i}") for i in range(6)]
    assert searcher.suggest("t6") == ArchSearcher.FINISHED
    # balanced: each embedding kind twice, each side of freezing three times, every pair once
    assert Counter(c["embedding"] for c in configs) == {"word2vec": 2, "fasttext": 2, "random": 2}
    assert len({(c["freeze_embeddings"], c["embedding"]) for c in configs}) == 6

    scheduler.stopped["t1"] = 1  # as ArchASHA records a stop before the last epoch
    searcher.on_trial_complete("t0", {"val_acc": 0.8, "train_time_s": 3.0, "epoch": 3})
    searcher.on_trial_complete("t1", {"val_acc": 0.6, "train_time_s": 1.0, "epoch": 1})
    searcher.on_trial_complete("t2", {"val_acc": 0.7, "train_time_s": 2.0, "epoch": 2})  # time budget
    searcher.on_trial_complete("t3", None)                                              # never started
    searcher.on_trial_complete("t4", {"val_acc": 0.7, "epoch": 1}, error=True)
    searcher.on_trial_complete("t5", {"val_acc": 0.9, "train_time_s": float("nan"), "epoch": 3})

    study = optuna.load_study(study_name="s.cnn", storage=db)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    told = [(t.user_attrs["tune_trial_id"], t.state.name, t.user_attrs["stop_reason"], t.values)
            for t in study.trials]
    assert told == [("t0", "COMPLETE", "finished", [0.8, 3.0]),
                    ("t1", "PRUNED", "early-stopped", None),
                    ("t2", "FAIL", "budget-cut", None),
                    ("t3", "FAIL", "never-trained", None),
                    ("t4", "FAIL", "failed", None),
                    ("t5", "FAIL", "failed", None)]  # Optuna cannot rank a NaN cost
    assert [t.params["embedding"] for t in study.trials] == [c["embedding"] for c in configs]


def test_accuracy_objective_prunes_with_the_value_at_the_stopping_rung(tmp_path):
    scheduler = ArchASHA({"cnn": 3}, metric="val_acc", mode="max")
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ArchSearcher([parse_space(SPACE)], 2, seed=1, storage_url=db, study_name="a", overrides={},
                            objective="accuracy", scheduler=scheduler)
    searcher.suggest("t0"), searcher.suggest("t1")
    scheduler.stopped["t1"] = 1
    searcher.on_trial_complete("t0", {"val_acc": 0.8, "epoch": 3, "training_iteration": 3})
    searcher.on_trial_complete("t1", {"val_acc": 0.55, "epoch": 1, "training_iteration": 1})
    study = optuna.load_study(study_name="a.cnn", storage=db)
    assert len(study.directions) == 1
    pruned = study.trials[1]
    assert pruned.state.name == "PRUNED" and pruned.intermediate_values == {1: 0.55}
    assert study.best_trial.number == 0  # the pruned trial's 0.55 never counts as a final value


def test_objective_metrics():
    assert objective_metrics("front", "params_total") == (["val_acc", "params_total"], ["max", "min"])
    assert objective_metrics("accuracy", "x") == (["val_acc"], ["max"])
    with pytest.raises(ValueError):
        objective_metrics("pareto", "x")


def test_asha_ranks_a_trial_only_against_its_own_architecture():
    scheduler = ArchASHA({"fasttext": 16, "lstm": 16, "linear": 1}, metric="val_acc", mode="max")
    assert set(scheduler.ashas) == {"fasttext", "lstm"}  # one report per trial: no rungs
    controller = None  # AsyncHyperBandScheduler does not consult the controller
    fast = [trial(f"f{i}", "fasttext", 16) for i in range(4)]
    slow = trial("l0", "lstm", 16)
    for t in fast + [slow]:
        scheduler.on_trial_add(controller, t)
    for i, t in enumerate(fast):  # fastText reaches 0.80-0.83 at epoch 1
        scheduler.on_trial_result(controller, t, {"training_iteration": 1, "val_acc": 0.80 + 0.01 * i})
    # an LSTM at 0.55 after one epoch would be cut by a shared ASHA; its own has nothing to compare yet
    assert scheduler.on_trial_result(controller, slow, {"training_iteration": 1, "val_acc": 0.55}) \
        == TrialScheduler.CONTINUE
    worse = trial("f9", "fasttext", 16)
    decision = scheduler.on_trial_result(controller, worse, {"training_iteration": 1, "val_acc": 0.5})
    assert decision == TrialScheduler.STOP and scheduler.early_stopped("f9") and not scheduler.early_stopped("l0")
    linear = trial("x0", "linear", 1)
    assert scheduler.on_trial_result(controller, linear, {"training_iteration": 1, "val_acc": 0.1}) \
        == TrialScheduler.CONTINUE

    result = {"val_acc": 0.5}
    StopReasons(scheduler).on_trial_result(0, [], worse, result)
    assert result["early_stopped"] is True
    StopReasons(scheduler).on_trial_result(0, [], slow, result)
    assert result["early_stopped"] is False


def test_asha_stop_at_the_last_epoch_is_not_early():
    scheduler = ArchASHA({"cnn": 4}, metric="val_acc", mode="max")
    done = trial("c0", "cnn", 4)
    assert scheduler.on_trial_result(None, done, {"training_iteration": 4, "val_acc": 0.7}) == TrialScheduler.STOP
    assert not scheduler.early_stopped("c0")


def test_trials_the_time_budget_ended_are_told_at_the_end(tmp_path):
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ArchSearcher([parse_space(SPACE)], 3, seed=1, storage_url=db, study_name="b", overrides={},
                            objective="front", scheduler=ArchASHA({"cnn": 3}, metric="val_acc", mode="max"))
    for i in range(3):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t0", {"val_acc": 0.8, "train_time_s": 3.0, "epoch": 3})
    # progress.TimeBudget stops Tune with the others unfinished (Tune calls no on_trial_complete for them)
    ended = [SimpleNamespace(trial_id="t0", status="TERMINATED", last_result={"epoch": 3}),
             SimpleNamespace(trial_id="t1", status="RUNNING", last_result={"val_acc": 0.6, "epoch": 2}),
             SimpleNamespace(trial_id="t2", status="PENDING", last_result={})]
    searcher.close_ended(ended)
    states = [(t.state.name, t.user_attrs["stop_reason"])
              for t in optuna.load_study(study_name="b.cnn", storage=db).trials]
    assert states == [("COMPLETE", "finished"), ("FAIL", "budget-cut"), ("FAIL", "never-trained")]
    # a resume trains them: their results do not reach the FAIL Optuna trials (RerunSync mirrors them)
    assert searcher.ledger.on_result("t1", {"val_acc": 0.7}) and searcher.ledger.on_complete("t1", {}, False)
