"""``ray job submit``: a Ray head with its job server on loopback runs ``python -m study run`` as a job.

The head is ``ray start --head --block`` in a session of its own, with a private temp dir and token
(tests/helpers.py), its dashboard (the job server, from ``ray[default]``) and agent on free loopback
ports; it is stopped by killing its session by pid, never with ``ray stop``. The job ships this
checkout with ``--working-dir`` and writes the experiment to a storage path the head sees; the test
waits for SUCCEEDED and reads the experiment back.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cleanup, leftovers, ray_env, start, status_json, wait_for, write_spaces
from helpers import free_port

pytestmark = pytest.mark.cluster
pytest.importorskip("aiohttp", reason="the job server needs ray[default] (the jobs extra)")
RAY = str(Path(sys.executable).with_name("ray"))
ROOT = Path(__file__).resolve().parents[2]


def ray_cli(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def plain(line: str) -> str:
    """A CLI line without its colour codes and log prefix."""
    return re.sub(r"\x1b\[[0-9;]*m", "", line).split(" -- ", 1)[-1].strip()


def test_study_run_as_a_ray_job(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    env.pop("PYTHONPATH", None)    # the job must find `study` in the uploaded working dir
    port, dash = free_port(), free_port()
    head = start([RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                  "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                  "--dashboard-agent-listen-port", str(free_port()), "--num-cpus", "2", "--block",
                  "--disable-usage-stats", "--temp-dir", f"{env['RAY_TMPDIR']}/head"], env, tmp_path / "head.log")
    address = f"http://127.0.0.1:{dash}"
    try:
        wait_for(lambda: ray_cli(["job", "list", "--address", address], env, 60).returncode == 0, 240,
                 "the job server", poll=3)
        entrypoint = [sys.executable, "-m", "study", "run", "--store", synthetic_store, "--name", "job",
                      "--storage-path", str(storage), "--num-samples", "1", "--max-epochs", "1"]
        for space in write_spaces(tmp_path, ["cnn", "fasttext"]):
            entrypoint += ["--space", space]
        submit = ray_cli(["job", "submit", "--address", address, "--working-dir", str(ROOT), "--", *entrypoint],
                         env, 400)
        assert submit.returncode == 0, (submit.stdout + submit.stderr)[-3000:]
        job_id = next(w.strip("'") for line in submit.stdout.splitlines() for w in line.split()
                      if w.strip("'").startswith("raysubmit_"))
        answer = ray_cli(["job", "status", "--address", address, job_id], env, 60)
        status = [plain(line) for line in (answer.stdout + answer.stderr).splitlines() if job_id in line]
        print("final status line:", status[-1:])
        assert status[-1:] == [f"Job '{job_id}' succeeded"], answer.stdout + answer.stderr
        trials = status_json(storage, "job", env)
    finally:
        cleanup([head.pid], env["RAY_TMPDIR"])
    assert not leftovers([head.pid], env["RAY_TMPDIR"])
    assert "2/2 done" in submit.stdout                      # the job's log: our progress line
    assert any(plain(line) == f"Job '{job_id}' succeeded" for line in (submit.stdout + submit.stderr).splitlines())
    assert sorted(t["arch"] for t in trials) == ["cnn", "fasttext"]
    assert {t["status"] for t in trials} == {"TERMINATED"}
    assert (storage / "job" / "optuna.db").is_file() and (storage / "job" / "launch.json").is_file()
