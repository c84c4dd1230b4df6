"""Test hooks, inactive unless the environment asks for them (tests/search/test_reliability.py sets them).

``STUDY_FAULT_FAIL_TRIAL=KEY=VALUE``: a trial whose config has that value raises inside the trial, as a
configuration that passes the space's checks but fails in training would (the study's checks leave no
such configuration to pick honestly).

``STUDY_FAULT_HOLD_CHECKPOINT=PATH`` holds the driver while a trial's checkpoint is being registered, so a
test can kill it there every time:

    STUDY_FAULT_HOLD_CHECKPOINT=/tmp/x/hold python -m study run ...

When a trial reports its second (or later) checkpoint, the driver writes ``<hold>.held`` (JSON: the trial
id, the new checkpoint's path, the epoch) and waits until ``<hold>`` exists. At that moment the new
checkpoint is complete in storage, Ray has not yet registered it (nor deleted the trial's previous one),
and the saved experiment state still names the previous checkpoint: the state a driver killed mid-way
through checkpointing leaves. tests/search/test_reliability.py kills the driver's process group there.
"""
from __future__ import annotations

import json
import os
import time

from ray import tune

ENV = "STUDY_FAULT_HOLD_CHECKPOINT"
FAIL_ENV = "STUDY_FAULT_FAIL_TRIAL"


def fail_if_asked(config: dict) -> None:
    """Raise inside the trial when its config matches ``STUDY_FAULT_FAIL_TRIAL`` (KEY=VALUE)."""
    key, _, value = os.environ.get(FAIL_ENV, "").partition("=")
    if key and str(config.get(key)) == value:
        raise ValueError(f"injected fault: {key}={value}")


class CheckpointHold(tune.Callback):
    """Holds once, at the first trial checkpoint after a trial's first (see the module docstring)."""

    def __init__(self, hold_path: str):
        self.hold_path = hold_path
        self._seen: set[str] = set()
        self._held = False

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if self._held or os.environ.get(ENV) != self.hold_path:
            return  # also inactive when a resumed study brings the callback back without the variable
        if trial.trial_id not in self._seen:
            self._seen.add(trial.trial_id)
            return
        self._held = True
        epoch = (trial.last_result or {}).get("epoch")
        with open(f"{self.hold_path}.held", "w") as handle:
            json.dump({"trial_id": trial.trial_id, "checkpoint": checkpoint.path, "epoch": epoch}, handle)
        while not os.path.exists(self.hold_path):
            time.sleep(0.05)


def callbacks() -> list:
    """The hook's callback when the environment asks for it, else nothing."""
    path = os.environ.get(ENV)
    return [CheckpointHold(path)] if path else []
