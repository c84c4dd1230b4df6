"""What the project relies on in Ray's environment handling, checked against the installed Ray.

Ray reads its auth settings once, at import; ``ray_env.connect`` therefore sets a private token before it
imports Ray, so a local study never writes ``~/.ray/auth_token``. If a Ray upgrade changes when the
settings are read, this test fails (the local instance refuses the driver, or ``~/.ray`` appears).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cleanup, ray_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_local_connect_uses_a_private_token_and_leaves_home_alone(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = ray_env()  # a private, short temp dir; its RAY_AUTH_* are dropped: connect must make its own
    env = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    code = ("from study.search.ray_env import connect\n"
            "connect(None)\n"
            "import os, ray\n"
            "assert os.environ['RAY_AUTH_MODE'] == 'token' and len(os.environ['RAY_AUTH_TOKEN']) == 64\n"
            "assert ray.get(ray.put(41)) + 1 == 42\n"
            "ray.shutdown()\n"
            "print('ok')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        cleanup([proc.pid], env["RAY_TMPDIR"])
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    assert not (home / ".ray").exists()
