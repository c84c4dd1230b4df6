"""Idle cores go to the trials still training once no trial is waiting: the tail of a study runs on every core.

Each trial asks Ray for ``--cpus-per-trial`` CPUs and trains with that many PyTorch threads. At the end of a
study fewer trials than slots remain, and a lone trial would train on one core while the others idle.
``CoreShare`` (a driver callback) watches the trials; once every trial has been created and none is
pending, it splits each node's CPUs among the trials running there and writes ``<experiment>/threads.json``
(``{trial_id: threads}``). A trial reads it after each epoch (``threads_for``) and sets its thread count for
the next one. Only while no trial waits, so a trial never takes a core another trial was promised; only for
a local (or NFS) experiment folder, which every node sees.
"""
from __future__ import annotations

import time

from ray import tune

from study import experiment

THREADS_FILE = "threads.json"


def threads_for(experiment_path: str | None, trial_id: str, assigned: int) -> int:
    """The thread count this trial may use now: its share of idle cores, at least what Ray assigned."""
    if not experiment_path or "://" in experiment_path:
        return assigned
    try:
        shares = experiment.read_json(f"{experiment_path}/{THREADS_FILE}") or {}
    except ValueError:  # a file caught mid-replacement on a network filesystem: keep the threads it has
        return assigned
    return max(assigned, int(shares.get(trial_id, assigned)))


class CoreShare(tune.Callback):
    """Writes ``threads.json`` for the trials still training once none waits (see the module docstring)."""

    def __init__(self, experiment_path: str, total_trials: int, cpus_per_trial: float, every_s: float = 1.0):
        self.path = f"{experiment_path}/{THREADS_FILE}"
        self.total, self.cpus, self.every_s = total_trials, cpus_per_trial, every_s
        self._last, self._written = 0.0, None
        self._node_cpus: dict[str, float] = {}

    def on_step_end(self, iteration, trials, **info):
        if time.time() - self._last < self.every_s:
            return
        self._last = time.time()
        shares = self.shares(trials)
        if shares != self._written:
            experiment.write_json(self.path, shares)
            self._written = shares

    def shares(self, trials) -> dict[str, int]:
        if len(trials) < self.total or any(t.status == "PENDING" for t in trials):
            return {}
        running: dict[str, list[str]] = {}
        for trial in trials:
            node = (trial.last_result or {}).get("node_id")
            if trial.status == "RUNNING" and node:
                running.setdefault(node, []).append(trial.trial_id)
        if not self._node_cpus:
            import ray

            self._node_cpus = {n["NodeID"]: n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]}
        return {tid: max(int(self.cpus), int(self._node_cpus.get(node, 0) // len(ids)))
                for node, ids in running.items() for tid in ids}

