"""What the project relies on in Ray's environment handling, checked against the installed Ray.

Ray reads its auth settings once, at import; ``ray_env.connect`` therefore sets a private token before it
imports Ray, so a local study never writes ``~/.ray/auth_token``. If a Ray upgrade changes when the
settings are read, this test fails (the local instance refuses the driver, or ``~/.ray`` appears).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ray_env, run, study_cmd

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_study_run_as_a_user_types_it_keeps_its_token_private(synthetic_store, tmp_path):
    """`study run` with no RAY_* variables set: it must make its own token before anything imports Ray."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in ray_env().items() if not k.startswith("RAY_AUTH")}  # keeps a private RAY_TMPDIR
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    cmd = study_cmd("run", "--store", synthetic_store, "--space", ROOT / "search_spaces" / "fasttext.yaml",
                    "--name", "user", "--storage-path", tmp_path / "exp", "--num-samples", "1",
                    "--max-epochs", "1")
    log = tmp_path / "run.log"
    assert run(cmd, env, log, timeout=300) == 0, log.read_text()[-3000:]
    assert "1/1 done" in log.read_text()
    assert not (home / ".ray").exists()


def test_a_ray_that_does_not_come_up_is_a_one_line_usage_error(tmp_path):
    """Ray raises a bare ``Exception`` when its node misses its 30 s start-up limit (seen on a loaded machine);
    a start that slow cannot be staged in a test, so the process below puts that exact exception in place of
    ``ray.init`` and checks what ``connect`` makes of it."""
    code = textwrap.dedent("""
        import ray
        from study.errors import UsageError
        from study.search.ray_env import connect

        def init(**kwargs):
            raise Exception("The current node timed out during startup. This could happen because some of\\n"
                            "the raylet failed to startup or the GCS has become overloaded.")
        ray.init = init
        try:
            connect(None)
        except UsageError as exc:
            print("usage error:", exc)
    """)
    env = {**ray_env(), "PYTHONPATH": str(ROOT)}  # its RAY_AUTH_* settings let Ray be imported first
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage error: cannot connect to Ray at a new local instance: "
                                                   "The current node timed out during startup"), done.stdout + done.stderr
