"""A 2-node Ray cluster on loopback with token auth and logical GPUs: trials spread over both nodes.

Head and worker are ``ray start --block`` processes started with ``setsid`` semantics (a new session each);
they are stopped by killing their sessions by pid, never with ``ray stop``. Each node declares 2 logical
GPUs; trials ask for 0.5 GPU, so every trial gets a GPU id while the trainer falls back to the CPU.
"""
from __future__ import annotations

import pytest

from helpers import (RAY, cleanup, free_port, leftovers, node_count, ray_env, run, start, status_json, study_cmd,
                     wait_for, write_spaces)

pytestmark = pytest.mark.cluster


def test_two_node_cluster_with_token_auth_and_logical_gpus(synthetic_store, tmp_path):
    env, storage = ray_env(), tmp_path / "exp"
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--num-gpus", "2", "--node-ip-address", "127.0.0.1", "--block",
              "--disable-usage-stats"]
    head = start([RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false",
                  "--temp-dir", f"{env['RAY_TMPDIR']}/head", *common], env, tmp_path / "head.log")
    sessions = [head.pid]
    try:
        wait_for(lambda: node_count(address, env) >= 1, 180, "the head node", poll=2)
        worker = start([RAY, "start", "--address", address, "--temp-dir", f"{env['RAY_TMPDIR']}/worker",
                        *common], env, tmp_path / "worker.log")
        sessions.append(worker.pid)
        wait_for(lambda: node_count(address, env) >= 2, 180, "the worker node", poll=2)

        args = ["run", "--store", synthetic_store, "--name", "two", "--storage-path", storage,
                "--num-samples", 2, "--max-epochs", 1, "--gpus-per-trial", 0.5, "--address", address]
        for space in write_spaces(tmp_path, ["cnn", "fasttext"]):
            args += ["--space", space]
        log = tmp_path / "run.log"
        assert run(study_cmd(*args), env, log, timeout=400) == 0, log.read_text()[-3000:]
        trials = status_json(storage, "two", env)
    finally:
        cleanup(sessions, env["RAY_TMPDIR"])
    assert not leftovers(sessions, env["RAY_TMPDIR"])

    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    assert len({t["node_id"] for t in trials}) == 2, "trials ran on one node only"
    assert all(len(t["gpu_ids"]) == 1 for t in trials)  # half a logical GPU each
    assert {t["device"] for t in trials} == {"cpu"}  # no CUDA here: the trainer fell back cleanly
