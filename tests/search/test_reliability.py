"""Faults and bad input: every kill point ends, after ``resume`` (or nothing), with exactly K finished trials
per space, none duplicated, metrics matching each trial's last checkpoint, and optuna.db consistent with
Ray (``helpers.assert_exact_study``); bad study input gets one line, exit 2 and nothing written.

The fault table with the test for each row is docs/reliability.md. Real Ray everywhere except the first
tests (the searcher and Optuna alone, and refusals that answer before Ray starts).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from helpers import (assert_exact_study, cleanup, free_port, leftovers, node_count, ray_env, results, run, start,
                     start_node, status_json, study_cmd, wait_for, write_spaces)
from study.search import optuna_sync
from study.search.searcher import ArchSearcher
from study.search.spaces import load_space

REPO = Path(__file__).resolve().parents[2]


def study_args(name: str, storage: Path, store: str, spaces: list[str], samples: int, epochs: int | None,
               *extra):
    args = ["run", "--store", store, "--name", name, "--storage-path", storage, "--num-samples", samples,
            *(["--max-epochs", epochs] if epochs else []), *extra]
    for space in spaces:
        args += ["--space", space]
    return study_cmd(*args)


def resume_ok(storage: Path, name: str, env: dict, log: Path, *extra) -> None:
    code = run(study_cmd("resume", "--storage-path", storage, "--name", name, *extra), env, log, timeout=400)
    assert code == 0, log.read_text()[-3000:]


def snapshot(storage: Path, name: str) -> list[dict]:
    """trials.json as the driver last wrote it (cheaper than ``study status`` in a polling loop)."""
    path = storage / name / "trials.json"
    return json.loads(path.read_text())["trials"] if path.exists() else []


def kill_group(driver: subprocess.Popen, env: dict) -> None:
    """SIGKILL the driver's process group, as a crash would, and everything it started."""
    try:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        cleanup([driver.pid], env["RAY_TMPDIR"])


# ---------------------------------------------------------------- no Ray: the searcher keeps Optuna in step

def test_rerun_of_a_failed_trial_is_a_new_finished_optuna_trial(tmp_path):
    spaces = [load_space(p) for p in write_spaces(tmp_path, ["fasttext"])]
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = ArchSearcher(spaces, 3, seed=1, storage_url=db, study_name="s", overrides={})
    config = searcher.suggest("t0")
    searcher.suggest("t1")
    searcher.on_trial_complete("t0", None, error=True)  # errored: Ray's OptunaSearch tells FAIL
    searcher.save(str(tmp_path / "state.pkl"))
    again = ArchSearcher(spaces, 3, seed=1, storage_url=db, study_name="s", overrides={})
    again.restore(str(tmp_path / "state.pkl"))  # a resume: t0 is re-run with its config
    for epoch, acc in ((1, 0.5), (2, 0.75)):  # OptunaSearch would drop these ("already finished")
        again.on_trial_result("t0", {"val_acc": acc, "training_iteration": epoch})
    again.on_trial_complete("t0", {"val_acc": 0.75, "training_iteration": 2})
    # the driver callback (RerunSync) mirrors the re-run; a second completion adds nothing
    assert optuna_sync.mirror_rerun(db, "s", "t0", [0.75], {1: 0.5, 2: 0.75})
    assert not optuna_sync.mirror_rerun(db, "s", "t0", [0.75], {1: 0.5, 2: 0.75})

    study = optuna.load_study(study_name="s.fasttext", storage=db)
    by_state = {state: [t for t in study.trials if t.state.name == state] for state in ("FAIL", "COMPLETE")}
    [fail], [done] = by_state["FAIL"], by_state["COMPLETE"]
    assert fail.user_attrs[optuna_sync.TAG] == done.user_attrs[optuna_sync.TAG] == "t0"
    assert done.value == 0.75 and done.intermediate_values == {1: 0.5, 2: 0.75}
    assert done.params == fail.params == {k: config[k] for k in fail.params}
    assert done.user_attrs[optuna_sync.RERUN_OF] == fail.number
    # t1 is still RUNNING and known; an orphan (asked, never snapshotted) is closed on restore
    assert [t.user_attrs[optuna_sync.TAG] for t in study.trials if t.state.name == "RUNNING"] == ["t1"]
    again.suggest("t2")
    third = ArchSearcher(spaces, 3, seed=1, storage_url=db, study_name="s", overrides={})
    third.restore(str(tmp_path / "state.pkl"))  # the state from before t2 was asked
    states = {t.user_attrs.get(optuna_sync.TAG): t.state.name for t in
              optuna.load_study(study_name="s.fasttext", storage=db).trials if t.state.name != "COMPLETE"}
    assert states == {"t0": "FAIL", "t1": "RUNNING", "t2": "FAIL"}


def test_recorded_results_leave_out_a_half_written_line(tmp_path):
    """A driver killed (or read) while the logger writes a line leaves it cut short: not a result yet."""
    from study.search.rebuild import recorded_results

    (tmp_path / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "train_loss": 0.85')
    assert recorded_results(str(tmp_path)) == [{"epoch": 1}, {"epoch": 2}]
    (tmp_path / "result.json").write_text('{"epoch": 1}\n')
    assert recorded_results(str(tmp_path)) == [{"epoch": 1}]


def test_resumed_scheduler_is_rebuilt_from_recorded_results(tmp_path):
    """ASHA after a resume decides as it would have without the interruption (Tune does not save it)."""
    from types import SimpleNamespace

    from study.search.rebuild import SchedulerRebuild
    from study.search.scheduler import MARK, ArchASHA

    def asha():  # one ASHA per architecture, as the study runs it
        return ArchASHA({"cnn": 9}, metric="val_acc", mode="max", reduction_factor=2)

    def trial(tid, path, last_result, status):
        return SimpleNamespace(trial_id=tid, path=path, last_result=last_result, status=status,
                               config={"arch": "cnn", "epochs": 9})

    trials, straight = [], asha()
    for i, accs in enumerate([[0.9, 0.92, 0.95], [0.8, 0.85], [0.7], [0.85, 0.9, 0.93]]):
        folder = tmp_path / f"t{i}"
        folder.mkdir()
        made = trial(f"t{i}", str(folder), None, "PENDING")
        straight.on_trial_add(None, made)
        rows = []
        for n, a in enumerate(accs):  # results as StopReasons marks them
            row = {"training_iteration": n + 1, "val_acc": a}
            straight.on_trial_result(None, made, row)
            rows.append({**row, MARK: straight.early_stopped(made.trial_id)})
        (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        made.last_result = rows[-1]
        trials.append(made)
    assert straight.early_stopped("t2")  # 0.7 is below the first rung's median
    resumed, fresh = asha(), asha()
    for made in trials:  # Tune re-adds every restored trial to the (empty) scheduler
        resumed.on_trial_add(None, made)
    SchedulerRebuild(resumed).on_step_begin(0, trials)
    assert resumed.ashas["cnn"].debug_string() == straight.ashas["cnn"].debug_string()
    assert resumed.stopped == straight.stopped  # the searcher still tells Optuna PRUNED for them
    late = trial("late", None, None, "RUNNING")
    decisions = []
    for scheduler in (straight, resumed, fresh):
        scheduler.on_trial_add(None, late)
        decisions.append(scheduler.on_trial_result(None, late, {"training_iteration": 1, "val_acc": 0.75}))
    assert decisions == ["STOP", "STOP", "CONTINUE"]  # a fresh scheduler would let the weak trial run


def test_trials_json_says_which_trials_asha_stopped_and_the_budget_cut(tmp_path):
    from types import SimpleNamespace

    from study.search.progress import TrialsSnapshot

    from study.analysis.results import trials_frame
    from study.analysis.table import stop_reasons

    def trial(tid, status, epoch, asha=False):
        return SimpleNamespace(trial_id=tid, status=status, num_failures=0, config={"arch": "cnn", "epochs": 3},
                               last_result={"epoch": epoch, "val_acc": 0.5, "early_stopped": asha} if epoch else {})

    trials = [trial("done", "TERMINATED", 3), trial("asha", "TERMINATED", 1, asha=True),
              trial("cut", "RUNNING", 2), trial("waiting", "PENDING", 0)]
    snapshot = TrialsSnapshot(str(tmp_path))
    assert snapshot.budget_reached(trials) == {"cut": 2, "waiting": 0}
    frame = trials_frame(str(tmp_path))
    written = dict(zip(frame["trial_id"], zip(frame["status"], stop_reasons(frame))))
    assert written == {"done": ("TERMINATED", "finished"), "asha": ("TERMINATED", "early-stopped"),
                       "cut": ("BUDGET_CUT", "budget-cut"), "waiting": ("BUDGET_CUT", "never-trained")}
    assert json.loads((tmp_path / "budget_cut.json").read_text()) == {"cut": 2, "waiting": 0}


def test_idle_cores_go_to_the_trials_left_once_none_waits(tmp_path):
    from types import SimpleNamespace

    from study.search.cores import CoreShare, threads_for

    def trial(tid, status, node="n1"):
        return SimpleNamespace(trial_id=tid, status=status, last_result={"node_id": node} if node else {})

    share = CoreShare(str(tmp_path), total_trials=3, cpus_per_trial=1)
    share._node_cpus = {"n1": 4.0, "n2": 2.0}  # as ray.nodes() would say
    assert share.shares([trial("a", "RUNNING"), trial("b", "RUNNING")]) == {}  # a trial not yet made
    assert share.shares([trial("a", "RUNNING"), trial("b", "RUNNING"), trial("c", "PENDING", None)]) == {}
    left = [trial("a", "RUNNING"), trial("b", "TERMINATED"), trial("c", "RUNNING", "n2")]
    assert share.shares(left) == {"a": 4, "c": 2}
    share.every_s = 0
    share.on_step_end(0, left)
    assert threads_for(str(tmp_path), "a", 1) == 4 and threads_for(str(tmp_path), "b", 1) == 1
    assert threads_for(None, "a", 1) == 1


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written

def _changed_store(store: str, tmp_path: Path) -> tuple[Path, list]:
    """A launched study whose store's data file was then edited (its manifest left as it was)."""
    from data_prep import store as store_mod

    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    storage = tmp_path / "exp"
    (storage / "s").mkdir(parents=True)
    (storage / "s" / "launch.json").write_text(json.dumps(
        {"store": str(copy), "store_hash": store_mod.read_manifest(str(copy))["content_hash"]}))
    with open(copy / "sequences.parquet", "ab") as handle:
        handle.write(b"edited")
    return storage, ["resume", "--storage-path", storage, "--name", "s"]


BAD_SPACES = {
    "unknown key": ("arch: cnn\nfixed: {epochs: 1}\nsearch:\n  lr: {type: float, low: 0.001, high: 0.01}\n"
                    "  colour: {type: categorical, choices: [red]}\n", "colour"),
    "empty range": ("arch: cnn\nsearch:\n  lr: {type: float, low: 0.01, high: 0.01}\n", "low"),
    "wrong choice type": ("arch: cnn\nsearch:\n  widths: {type: categorical, choices: [[3, 4]]}\n", "choice"),
}


@pytest.mark.parametrize("case", [*BAD_SPACES, "missing file", "dead address", "unwritable storage",
                                  "zero samples", "changed store"])
def test_bad_study_input_is_one_line_exit_2_and_writes_nothing(case, synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    [space] = write_spaces(tmp_path, ["cnn"])
    extra, expect = [], {"zero samples": "--num-samples"}.get(case, case.split()[0])
    if case in BAD_SPACES:
        text, expect = BAD_SPACES[case]
        space = tmp_path / "bad.yaml"
        space.write_text(text)
    elif case == "missing file":
        space, expect = tmp_path / "nope.yaml", "cannot read"
    elif case == "dead address":
        extra, expect = ["--address", f"127.0.0.1:{free_port()}"], "nothing answers"
    elif case == "unwritable storage":
        storage = tmp_path / "a-file" / "exp"  # a file where a folder must go (root ignores chmod)
        storage.parent.write_text("")
        expect = "not writable"
    cmd = study_args("s", storage, synthetic_store, [str(space)], 1 if case != "zero samples" else 0, 1, *extra)
    if case == "changed store":
        storage, args = _changed_store(synthetic_store, tmp_path)
        cmd, expect = study_cmd(*args), "sequences.parquet"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    started = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert time.time() - started < 30
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


# ---------------------------------------------------------------- real Ray: kill points

@pytest.mark.slow
def test_driver_killed_before_the_first_result_then_resume(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    driver = start(study_args("early", storage, synthetic_store, write_spaces(tmp_path, ["cnn", "fasttext"]), 2, 2),
                   env, tmp_path / "run.log")
    try:  # launch.json appears once Tune has saved its state, before any trial has reported
        wait_for(lambda: (storage / "early" / "launch.json").exists(), 300, "launch.json", poll=0.02, proc=driver)
        assert not results(storage, "early")
    finally:
        kill_group(driver, env)
    resume_ok(storage, "early", env, tmp_path / "resume.log")
    assert_exact_study(storage, "early", env, {"cnn": 2, "fasttext": 2})


@pytest.mark.slow
def test_driver_killed_while_a_checkpoint_is_written_then_resume(synthetic_store, tmp_path):
    """The driver holds (study/search/faults.py) with a trial's new checkpoint in storage and the saved
    state naming the previous one; it is killed there. Ray's next step would have deleted the previous
    checkpoint before uploading the state: the test deletes it too, the worst case of that window."""
    env, storage = ray_env(), tmp_path / "exp"
    hold = tmp_path / "hold"
    env["STUDY_FAULT_HOLD_CHECKPOINT"] = str(hold)
    driver = start(study_args("ckpt", storage, synthetic_store, write_spaces(tmp_path, ["fasttext"]), 2, 3,
                              "--max-concurrent", 1), env, tmp_path / "run.log")
    try:
        held = json.loads(wait_for(lambda: Path(f"{hold}.held").exists() and Path(f"{hold}.held").read_text(),
                                   300, "the checkpoint hold", proc=driver))
    finally:
        kill_group(driver, env)
    trial_dir = Path(held["checkpoint"]).parent
    older = sorted(p for p in trial_dir.glob("checkpoint_*") if p != Path(held["checkpoint"]))
    assert older, "no previous checkpoint to lose"
    for path in older:
        shutil.rmtree(path)
    env.pop("STUDY_FAULT_HOLD_CHECKPOINT")
    resume_ok(storage, "ckpt", env, tmp_path / "resume.log")
    assert "was deleted before the crash" in (tmp_path / "resume.log").read_text()
    trials = assert_exact_study(storage, "ckpt", env, {"fasttext": 2})
    [held_trial] = [t for t in trials if t["trial_id"] == held["trial_id"]]
    assert held_trial["epochs"] > held["epoch"]  # it trained on from the newer checkpoint


@pytest.mark.slow
def test_failed_trials_and_killed_driver_mid_study_then_resume(synthetic_store, tmp_path):
    """One study, three faults: every lstm trial raises inside the trial (the study goes on and lists
    them as failed with the error's last line), a trial worker is SIGKILLed (retried from its checkpoint),
    and the driver's process group is SIGKILLed mid-study. ``resume`` then re-runs the failed trials (the
    fault is gone) and the interrupted ones; Optuna keeps the failed attempts as FAIL and the re-runs as
    COMPLETE."""
    env, storage = ray_env(), tmp_path / "exp"
    env["STUDY_FAULT_FAIL_TRIAL"] = "arch=lstm"
    spaces = write_spaces(tmp_path, ["lstm", "fasttext"])
    for space, epochs in zip(spaces, (2, 150)):  # short lstm trials, fasttext trials long enough to kill
        Path(space).write_text(Path(space).read_text().replace("epochs: 1", f"epochs: {epochs}"))
    cmd = study_args("mid", storage, synthetic_store, spaces, 2, None, "--max-failures", 1, "--max-concurrent", 2)
    driver = start(cmd, env, tmp_path / "run.log")

    def training(trials):  # a fasttext trial mid-way: (its id, its worker's pid)
        return next(((t["trial_id"], t["last_result"]["pid"]) for t in trials if t["arch"] == "fasttext"
                     and t["status"] == "RUNNING" and t["last_result"].get("epoch", 0) >= 1), None)

    try:
        victim, pid = wait_for(lambda: training(snapshot(storage, "mid")), 300, "a fasttext epoch", proc=driver)
        os.kill(pid, signal.SIGKILL)  # one trial worker
        wait_for(lambda: any(r["trial_id"] == victim and r["pid"] != pid for r in results(storage, "mid")),
                 300, "the retried trial's next epoch", proc=driver)
        wait_for(lambda: sum(t["status"] == "ERROR" for t in snapshot(storage, "mid")) == 2, 300,
                 "the lstm failures", poll=0.2, proc=driver)
    finally:
        kill_group(driver, env)  # mid-study (unless the fasttext trials already finished)
    before = status_json(storage, "mid", env)
    errors = {t["error"] for t in before if t["status"] == "ERROR"}
    assert errors == {"ValueError: injected fault: arch=lstm"}, errors
    assert any(t["num_failures"] >= 1 for t in before if t["arch"] == "fasttext")
    report = tmp_path / "report"
    assert subprocess.run(study_cmd("report", "--storage-path", storage, "--name", "mid", "--out", report),
                          env=env, capture_output=True, timeout=120, cwd=REPO).returncode == 0
    assert "injected fault: arch=lstm" in (report / "summary.md").read_text()

    env.pop("STUDY_FAULT_FAIL_TRIAL")
    resume_ok(storage, "mid", env, tmp_path / "resume.log")
    assert_exact_study(storage, "mid", env, {"lstm": 2, "fasttext": 2})
    db = f"sqlite:///{storage / 'mid' / 'optuna.db'}"
    lstm = Counter(t.state.name for t in optuna.load_study(study_name="mid.lstm", storage=db).trials)
    assert lstm == {"FAIL": 2, "COMPLETE": 2}, lstm


@pytest.mark.slow
def test_time_budget_cut_trials_are_trained_by_resume_or_kept_unrun(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    log = tmp_path / "run.log"
    code = run(study_args("budget", storage, synthetic_store, write_spaces(tmp_path, ["fasttext"]), 4, 20,
                          "--time-budget-s", 1, "--max-concurrent", 2), env, log, timeout=400)
    assert code == 0, log.read_text()[-3000:]
    cut = [t for t in status_json(storage, "budget", env) if t["status"] == "BUDGET_CUT"]
    assert cut and {t["stop_reason"] for t in cut} <= {"budget-cut", "never-trained"}, log.read_text()[-2000:]
    assert "cut by the time budget" in log.read_text()
    # Optuna was told before Tune saved its state: the cut trials are FAIL with that stop_reason
    assert optuna_sync.mismatches(str(storage / "budget"), "budget") == []
    db = f"sqlite:///{storage / 'budget' / 'optuna.db'}"
    told = {t.user_attrs[optuna_sync.TAG]: (t.state.name, t.user_attrs.get(optuna_sync.STOP_REASON))
            for t in optuna.load_study(study_name="budget.fasttext", storage=db).trials}
    assert {told[t["trial_id"]] for t in cut} <= {("FAIL", "budget-cut"), ("FAIL", "never-trained")}, told

    kept = tmp_path / "kept"  # the same study, closed as it is instead (no Ray: a copy suffices)
    shutil.copytree(storage, kept, symlinks=True)
    resume_ok(kept, "budget", env, tmp_path / "keep.log", "--keep-budget-cut")
    assert optuna_sync.mismatches(str(kept / "budget"), "budget") == []  # none left RUNNING
    again = subprocess.run(study_cmd("resume", "--storage-path", kept, "--name", "budget"), env=env,
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert again.returncode == 2 and "closed" in again.stderr

    resume_ok(storage, "budget", env, tmp_path / "resume.log")
    trials = assert_exact_study(storage, "budget", env, {"fasttext": 4})
    assert {t["stop_reason"] for t in trials} <= {"finished", "early-stopped"}  # to the end, or ASHA's stop
    # each cut trial: its FAIL attempt, and its outcome mirrored as a new COMPLETE or PRUNED Optuna trial
    mirrored = [t for t in optuna.load_study(study_name="budget.fasttext", storage=db).trials
                if optuna_sync.RERUN_OF in t.user_attrs]
    assert sorted(t.user_attrs[optuna_sync.TAG] for t in mirrored) == sorted(t["trial_id"] for t in cut)
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in mirrored)


def worker_node_id(address: str, env: dict) -> str:
    """The Ray node id of the worker node (its raylet socket lies under the worker's temp dir)."""
    code = ("import ray; ray.init(address=%r, log_to_driver=False, configure_logging=False); "
            "print([n['NodeID'] for n in ray.nodes() if n['Alive'] and '/worker/' in n['RayletSocketName']][0])"
            % address)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.cluster
def test_worker_node_lost_mid_trial_trials_finish_on_the_head(synthetic_store, tmp_path):
    """Kill the worker node (its raylet and workers) while it trains; the storage path is a local folder
    on this machine, which both loopback nodes see. Its trial is retried on the head, from its checkpoint."""
    env, storage = ray_env(), tmp_path / "exp"
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(env, tmp_path / "head.log", head_port=port)
    sessions = [head.pid]
    try:
        wait_for(lambda: node_count(address, env) >= 1, 180, "the head node", poll=2)
        worker = start_node(env, tmp_path / "worker.log", address=address)
        sessions.append(worker.pid)
        wait_for(lambda: node_count(address, env) >= 2, 180, "the worker node", poll=2)
        driver = start(study_args("node", storage, synthetic_store, write_spaces(tmp_path, ["fasttext"]), 2, 150,
                                  "--address", address, "--max-failures", 2), env, tmp_path / "run.log")
        sessions.append(driver.pid)
        # Kill once the worker's trial is past ASHA's first two rungs (epochs 1 and 4; the next is 16), so
        # that it is surely still training; SIGKILL, as a machine that drops off would.
        worker_id = worker_node_id(address, env)
        wait_for(lambda: any(r["node_id"] == worker_id and r["epoch"] >= 5 for r in results(storage, "node")),
                 300, "the worker node's trial past epoch 4", poll=0.02, proc=driver)
        for proc in leftovers([worker.pid], env["RAY_TMPDIR"] + "/worker"):
            proc.kill()
        assert driver.wait(timeout=400) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        cleanup(sessions, env["RAY_TMPDIR"])
    trials = assert_exact_study(storage, "node", env, {"fasttext": 2})
    assert sum(t["num_failures"] for t in trials) >= 1  # the lost node's trial was retried
