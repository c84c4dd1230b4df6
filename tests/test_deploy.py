"""deploy/rayjob.yaml (KubeRay): its entrypoint is a `study run` that parses, on paths every pod mounts."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest
import yaml

from study.search.command import add_run_arguments
from study.search.spaces import load_space

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "rayjob.yaml"


class Refused(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):            # argparse would exit; the test wants the reason
        raise Refused(message)


def rayjob() -> dict:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    [job] = [d for d in docs if d["kind"] == "RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    return job


def pods(job: dict) -> list[dict]:
    cluster = job["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"]["spec"],
            *(group["template"]["spec"] for group in cluster["workerGroupSpecs"])]


def test_entrypoint_is_a_study_run_that_parses():
    words = shlex.split(rayjob()["spec"]["entrypoint"])
    assert words[:4] == ["python", "-m", "study", "run"]
    parser = Parser(prog="study run")
    add_run_arguments(parser)
    args = parser.parse_args(words[4:])          # every option known, every required one given
    assert args.num_samples >= 1
    with pytest.raises(Refused):                 # the check can fail: an option `study run` lacks
        parser.parse_args([*words[4:], "--no-such-option"])
    for space in args.space:                     # relative to the image's working dir: the repository
        assert load_space(ROOT / space).arch in space


def test_store_and_storage_are_on_the_volume_every_pod_mounts():
    job = rayjob()
    parser = Parser(prog="study run")
    add_run_arguments(parser)
    args = parser.parse_args(shlex.split(job["spec"]["entrypoint"])[4:])
    claims = {d["metadata"]["name"] for d in yaml.safe_load_all(MANIFEST.read_text())
              if d and d["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in d["spec"]["accessModes"]}
    for pod in pods(job):
        volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        [container] = pod["containers"]
        mounts = [m["mountPath"] for m in container["volumeMounts"] if volumes.get(m["name"]) in claims]
        for path in (args.store, args.storage_path):
            assert any(path.startswith(m.rstrip("/") + "/") for m in mounts), (container["name"], path)
        auth = {e["name"] for e in container["env"]}
        assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= auth      # same token on every node


def test_ray_version_matches_the_pinned_one():
    pinned = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines() if '"ray[' in line)
    assert rayjob()["spec"]["rayClusterSpec"]["rayVersion"] in pinned
    assert rayjob()["spec"]["rayClusterSpec"]["rayVersion"] in (ROOT / "deploy" / "Dockerfile").read_text()
