"""``study dashboard``: a real optuna-dashboard server over an experiment's optuna.db, read over HTTP.

The experiment's Optuna studies are written by the search's own ``ArchSearcher`` (real SQLite storage, no
Ray cluster). The server runs as ``python -m study dashboard`` in its own session on a free loopback port
and is stopped by killing that session by pid.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from helpers import wait_for, write_spaces
from study import experiment

pytest.importorskip("optuna_dashboard", reason="the dashboard extra: pip install -e '.[dashboard]'")
ROOT = Path(__file__).resolve().parents[2]
ARCHES = ("cnn", "lstm", "fasttext")


def make_experiment(storage: Path, name: str, per_arch: int) -> None:
    """optuna.db as a finished study leaves it: ``per_arch`` completed trials per architecture."""
    from study.search.searcher import ArchSearcher
    from study.search.spaces import load_space

    spaces = [load_space(p) for p in write_spaces(storage, ARCHES)]
    path = Path(experiment.experiment_path(str(storage), name))
    experiment.write_json(str(path / experiment.LAUNCH_FILE), {"arches": list(ARCHES)})
    searcher = ArchSearcher(spaces, per_arch, seed=0, storage_url=f"sqlite:///{path / experiment.OPTUNA_FILE}",
                            study_name=name, overrides={})
    for i in range(per_arch * len(ARCHES)):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"val_acc": 0.5 + i / 100, "training_iteration": 1})


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def dashboard(storage: Path, name: str, *extra) -> list[str]:
    return [sys.executable, "-m", "study", "dashboard", "--storage-path", str(storage), "--name", name, *extra]


def test_dashboard_serves_the_experiments_studies(tmp_path):
    make_experiment(tmp_path, "dash", per_arch=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(dashboard(tmp_path, "dash", "--port", "0"), stdout=out,
                                  stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    try:
        first = wait_for(lambda: log.read_text().split("\n", 1)[0] if "\n" in log.read_text() else "",
                         60, "the dashboard's address line")
        assert first.startswith("optuna-dashboard on http://127.0.0.1:"), log.read_text()
        base = first.split()[2].rstrip("/")

        def studies():
            try:
                return get(f"{base}/api/studies")["study_summaries"]
            except OSError:
                return None

        summaries = wait_for(studies, 60, "the dashboard's HTTP answer", poll=0.5)
        print(f"GET {base}/api/studies ->", json.dumps(summaries))
        assert sorted(s["study_name"] for s in summaries) == sorted(f"dash.{a}" for a in ARCHES)
        assert all(s["directions"] == ["maximize"] for s in summaries)   # the search maximises val_acc
        for s in summaries:
            trials = get(f"{base}/api/studies/{s['study_id']}")["trials"]
            assert [t["state"] for t in trials] == ["Complete", "Complete"], s["study_name"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    with pytest.raises(OSError):       # stopped: nothing listens any more
        get(f"{base}/api/studies")


def test_dashboard_without_optuna_db_is_one_line(tmp_path):
    out = subprocess.run(dashboard(tmp_path, "nothing"), capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"study dashboard: error: no study 'nothing' at {tmp_path / 'nothing'}"
