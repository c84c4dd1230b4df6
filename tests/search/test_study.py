"""Real Ray Tune studies on the synthetic store: complete, survive a killed driver and a killed worker.

Each study runs ``python -m study ...`` as a subprocess in its own session with a private Ray temp dir
and token (see tests/helpers.py), and everything it started is killed by pid afterwards. Tiny spaces, 1 epoch.
"""
from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

import pytest

from helpers import cleanup, ray_env, results, run, start, status_json, study_cmd, wait_for, write_spaces
from study.search.searcher import ArchSearcher
from study.search.spaces import load_space

ARCHES = ("cnn", "lstm", "fasttext")


def test_arch_searcher_gives_exactly_k_per_space_and_survives_save_restore(tmp_path):
    """No Ray needed: the searcher alone, with its real Optuna SQLite storage."""
    spaces = [load_space(p) for p in write_spaces(tmp_path)]
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ArchSearcher(spaces, 3, seed=1, storage_url=db, study_name="s", overrides={"epochs": 2})
    first = [searcher.suggest(f"t{i}") for i in range(4)]
    assert [c["arch"] for c in first] == ["cnn", "lstm", "fasttext", "cnn"]  # round-robin
    assert all(c["epochs"] == 2 and c["max_len"] == 40 for c in first)  # fixed + overrides
    assert 4 <= first[1]["hidden_size"] <= 8 and first[1]["readout"] in ("max", "mean")
    searcher.on_trial_complete("t0", {"val_acc": 0.5, "training_iteration": 2})  # both epochs: finished
    searcher.save(str(tmp_path / "state.pkl"))

    again = ArchSearcher(spaces, 3, seed=1, storage_url=db, study_name="s", overrides={})
    again.restore(str(tmp_path / "state.pkl"))
    rest = [again.suggest(f"t{i}") for i in range(4, 10)]
    assert Counter(c["arch"] for c in first + rest[:5]) == {a: 3 for a in ARCHES}
    assert rest[5] == ArchSearcher.FINISHED  # a 10th trial is refused
    import optuna

    cnn = optuna.load_study(study_name="s.cnn", storage=db)
    assert [t.state.name for t in cnn.trials][:1] == ["COMPLETE"] and len(cnn.trials) == 3


@pytest.mark.slow
def test_small_study_completes_and_status_lists_it(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    spaces = write_spaces(tmp_path)
    args = ["run", "--store", synthetic_store, "--name", "small", "--storage-path", storage,
            "--num-samples", 2, "--max-epochs", 1, "--seed", 3]
    for space in spaces:
        args += ["--space", space]
    log = tmp_path / "run.log"
    assert run(study_cmd(*args), env, log, timeout=400) == 0, log.read_text()[-3000:]

    trials = status_json(storage, "small", env)
    assert len(trials) == 6
    assert Counter(t["arch"] for t in trials) == {a: 2 for a in ARCHES}
    assert {t["status"] for t in trials} == {"TERMINATED"}
    assert all(t["epochs"] == 1 and 0 <= t["val_acc"] <= 1 and t["gpu_ids"] == [] for t in trials)
    assert all(t["config/arch"] == t["arch"] and t["device"] == "cpu" for t in trials)
    text = log.read_text()
    assert "6/6 done" in text and "best val_acc" in text  # the concise progress view

    # One Optuna study per architecture in the experiment folder, each with its 2 trials finished.
    import optuna

    db = f"sqlite:///{storage / 'small' / 'optuna.db'}"
    for arch in ARCHES:  # --objective front (the default): two directions, accuracy and training time
        study = optuna.load_study(study_name=f"small.{arch}", storage=db)
        assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
        assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
        assert all(t.user_attrs["stop_reason"] == "finished" for t in study.trials)

    # Same name again: refused before Ray starts, pointing to resume.
    again = subprocess.run(study_cmd(*args), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "resume" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_sigkill_driver_then_resume_finishes_every_trial_once(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    args = ["run", "--store", synthetic_store, "--name", "crash", "--storage-path", storage,
            "--num-samples", 2, "--max-epochs", 3]
    for space in write_spaces(tmp_path):
        args += ["--space", space]
    driver = start(study_cmd(*args), env, tmp_path / "run.log")
    try:
        wait_for(lambda: len(results(storage, "crash")) >= 2, 300, "the first results")
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its session, as a crash would
        driver.wait(timeout=30)
    finally:
        cleanup([driver.pid], env["RAY_TMPDIR"])
    before = status_json(storage, "crash", env)
    assert sum(t["status"] == "TERMINATED" for t in before) < 6, "study finished before the kill"

    log = tmp_path / "resume.log"
    code = run(study_cmd("resume", "--storage-path", storage, "--name", "crash"), env, log, timeout=400)
    assert code == 0, log.read_text()[-3000:]
    trials = status_json(storage, "crash", env)
    assert len(trials) == 6 and len({t["trial_id"] for t in trials}) == 6
    assert Counter(t["arch"] for t in trials) == {a: 2 for a in ARCHES}
    assert {t["status"] for t in trials} == {"TERMINATED"}
    assert len(list((storage / "crash").glob("*_*/params.json"))) == 6  # no extra trial folders

    import optuna

    db = f"sqlite:///{storage / 'crash' / 'optuna.db'}"
    for arch in ARCHES:  # each Tune trial told Optuna once (ASHA's stops as PRUNED); orphans closed as FAIL
        states = Counter(t.state.name for t in optuna.load_study(study_name=f"crash.{arch}", storage=db).trials)
        assert states["COMPLETE"] + states["PRUNED"] == 2 and states["RUNNING"] == 0, states


@pytest.mark.slow
def test_killed_trial_worker_is_retried_from_its_checkpoint(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    [space] = write_spaces(tmp_path, ["fasttext"])
    epochs = 40  # long enough (a few seconds) to kill the worker mid-trial
    args = ["run", "--store", synthetic_store, "--space", space, "--name", "fault", "--storage-path", storage,
            "--num-samples", 1, "--max-epochs", epochs]
    driver = start(study_cmd(*args), env, tmp_path / "run.log")
    try:
        first = wait_for(lambda: results(storage, "fault"), 300, "the trial's first epoch")[0]
        os.kill(first["pid"], signal.SIGKILL)
        assert driver.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        cleanup([driver.pid], env["RAY_TMPDIR"])
    [trial] = status_json(storage, "fault", env)
    assert trial["status"] == "TERMINATED" and trial["epochs"] == epochs
    assert trial["num_failures"] == 1 and trial["pid"] != first["pid"]
    assert trial["resumed_from"] >= 1  # continued from a checkpoint, not from scratch
