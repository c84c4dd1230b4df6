"""Repeats: the plan (which trials, which seeds, how many epochs), resume --repeats, and a real Ray study
whose driver is killed during its repeats and resumed: every planned repeat runs exactly once and the search
keeps exactly its K trials per space."""
from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from helpers import cleanup, ray_env, results, run, start, status_json, study_cmd, wait_for, write_spaces
from study import experiment
from study.errors import UsageError
from study.search import command
from study.search.repeats import chosen_trials, make_plan


def search_frame() -> pd.DataFrame:
    rows = [("c1", "cnn", 0.80, 10.0, 3), ("c2", "cnn", 0.70, 50.0, 3),      # c2: dominated, not best
            ("f1", "fasttext", 0.75, 1.0, 1), ("l1", "lstm", 0.60, 90.0, 2)]  # l1: lstm's best, on no front
    return pd.DataFrame([{"trial_id": t, "arch": a, "status": "TERMINATED", "val_acc": v, "test_acc": 1.5 - v,
                          "train_time_s": c, "epochs": e, "epoch": e, "majority_share": 0.5, "macro_f1": 0.5,
                          "epoch_time_s": 1.0, "samples_per_s": 100.0 / c, "params_total": 10, "params_trainable": 10,
                          "params_no_embedding": 5, "max_params_per_layer": 5, "peak_rss_mb": 1.0,
                          "train_loss": 0.1, "val_loss": 0.1} for t, a, v, c, e in rows])


def test_plan_repeats_front_members_and_each_archs_best_with_new_seeds():
    frame = search_frame()
    assert sorted(chosen_trials(frame)) == ["c1", "f1", "l1"]
    configs = {t: {"arch": a, "lr": 0.01, "seed": 7, "epochs": 5} for t, a in zip(frame.trial_id, frame.arch)}
    plan = make_plan(frame, configs, 2)
    assert Counter(p["repeat_of"] for p in plan) == {"c1": 2, "f1": 2, "l1": 2}
    c1 = [p["config"] for p in plan if p["repeat_of"] == "c1"]
    assert [c["seed"] for c in c1] == [8, 9] and {c["epochs"] for c in c1} == {3}   # the epochs c1 ran
    assert [p["config"]["epochs"] for p in plan if p["repeat_of"] == "f1"] == [1, 1]  # ASHA stopped it at 1


def test_resume_repeats_is_recorded_once(tmp_path):
    path = str(tmp_path)
    launch = {"repeats": 0}
    experiment.write_json(f"{path}/{experiment.LAUNCH_FILE}", launch)
    assert command._with_repeats(path, launch, None) == launch
    assert experiment.read_json(f"{path}/{experiment.LAUNCH_FILE}") == launch
    assert command._with_repeats(path, launch, 2)["repeats"] == 2
    assert experiment.read_json(f"{path}/{experiment.LAUNCH_FILE}")["repeats"] == 2
    experiment.write_json(f"{path}/{experiment.REPEATS_DIR}/{experiment.PLAN_FILE}", [{"repeat_of": "x"}])
    with pytest.raises(UsageError, match="planned with --repeats 2"):
        command._with_repeats(path, {"repeats": 2}, 3)
    assert command.parse_price("cpu=0.05") == {"cpu": 0.05, "gpu": 0.0}
    for bad in ("cpu=x", "tpu=1", "cpu=-1"):
        with pytest.raises(UsageError, match="price-per-hour"):
            command.parse_price(bad)


@pytest.mark.slow
def test_repeats_survive_a_killed_driver_and_are_no_search_trials(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    args = ["run", "--store", synthetic_store, "--name", "rep", "--storage-path", storage, "--num-samples", 1,
            "--max-epochs", 2, "--repeats", 2, "--seed", 4]
    for space in write_spaces(tmp_path):
        args += ["--space", space]
    driver = start(study_cmd(*args), env, tmp_path / "run.log")
    try:
        wait_for(lambda: results(storage / "rep", "repeats"), 400, "the first repeat's result")
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        cleanup([driver.pid], env["RAY_TMPDIR"])
    log = tmp_path / "resume.log"
    assert run(study_cmd("resume", "--storage-path", storage, "--name", "rep"), env, log, timeout=400) == 0, \
        log.read_text()[-3000:]
    assert "of the study's" in log.read_text()          # what the repeats cost, as a share

    trials = status_json(storage, "rep", env)
    search = [t for t in trials if t["repeat_of"] is None]
    repeats = [t for t in trials if t["repeat_of"] is not None]
    plan = json.loads((storage / "rep" / "repeats" / "plan.json").read_text())
    assert Counter(t["arch"] for t in search) == {"cnn": 1, "lstm": 1, "fasttext": 1}
    assert {t["status"] for t in trials} == {"TERMINATED"}
    # every planned repeat ran exactly once, with its own seed, for the epochs its original ran
    assert sorted((t["repeat_of"], t["seed"]) for t in repeats) == \
        sorted((p["repeat_of"], p["config"]["seed"]) for p in plan)
    assert {t["seed"] for t in repeats} == {5, 6} and {t["seed"] for t in search} == {4}
    epochs = {t["trial_id"]: t["epochs"] for t in search}
    assert all(t["epochs"] == epochs[t["repeat_of"]] for t in repeats)
    import optuna

    db = f"sqlite:///{storage / 'rep' / 'optuna.db'}"
    for arch in ("cnn", "lstm", "fasttext"):      # the searcher never saw a repeat
        assert len(optuna.load_study(study_name=f"rep.{arch}", storage=db).trials) == 1


def test_the_search_learns_from_validation_never_from_test(tmp_path):
    """Optuna's TPE (and ASHA, on searcher.METRIC) see val_acc: a trial worse on validation but better on
    test must be recorded as the worse one."""
    from study.search.searcher import METRIC, ArchSearcher
    from study.search.spaces import load_space

    assert METRIC == "val_acc"
    [space] = [load_space(p) for p in write_spaces(tmp_path, ["fasttext"])]
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ArchSearcher([space], 2, seed=0, storage_url=db, study_name="s", overrides={})
    searcher.suggest("good_val"), searcher.suggest("good_test")
    searcher.on_trial_complete("good_val", {"val_acc": 0.80, "test_acc": 0.60, "training_iteration": 1})
    searcher.on_trial_complete("good_test", {"val_acc": 0.70, "test_acc": 0.90, "training_iteration": 1})
    import optuna

    study = optuna.load_study(study_name="s.fasttext", storage=db)
    assert [t.value for t in study.trials] == [0.80, 0.70] and study.best_trial.number == 0
