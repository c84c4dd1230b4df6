"""Ray's environment and the connection to a cluster: quiet, no dashboard, nothing written to ~/.ray.

Ray reads its settings (auth mode and token included) once, when it is imported, so ``connect`` prepares
the environment first and imports Ray only then; every module of this package that imports Ray is
imported after ``prepare`` has run (see ``command.py``).

    from study.search.ray_env import connect
    connect("127.0.0.1:6379")      # or None: RAY_ADDRESS, else a private local Ray instance
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import sys

from study.errors import UsageError, one_line

QUIET = {
    "RAY_AIR_NEW_OUTPUT": "0",  # the old engine honours verbose=0 and our own progress line
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no TensorBoard files; JSON + CSV loggers are added explicitly
    # A checkpoint every epoch with num_to_keep=1 snapshots the state every epoch: wanted (a resumed study
    # must find every reported checkpoint), so Ray's warning about it is noise here.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


def prepare(address: str | None) -> None:
    """Set Ray's environment; call before Ray is imported. A new local instance gets its own token:
    Ray >= 2.5x turns token auth on for a fresh local cluster and would write ~/.ray/auth_token."""
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    if address or os.environ.get("RAY_ADDRESS") or "RAY_AUTH_MODE" in os.environ:
        return  # joining a cluster: its auth settings come from the user's environment
    if "ray" in sys.modules:  # too late: this process's Ray has read its settings without the token
        raise UsageError("Ray was imported before the study set up its local instance; start the study in a "
                         "fresh process, or set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN before importing Ray")
    os.environ["RAY_AUTH_MODE"] = "token"
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def connect(address: str | None) -> None:
    """Join ``address`` (or RAY_ADDRESS), else start Ray here."""
    prepare(address)
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        _check_listening(address)
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=True, logging_level=logging.WARNING)
    except Exception as exc:  # Ray raises a bare Exception when a node does not come up in time
        raise UsageError(f"cannot connect to Ray at {address or 'a new local instance'}: {one_line(exc)}") from None


def _check_listening(address: str, timeout_s: float = 5.0) -> None:
    """Answer at once when nothing listens at ``address`` (``ray.init`` would retry for minutes)."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address must be HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(f"cannot connect to Ray at {address}: nothing answers there ({exc.strerror or exc})") from None
