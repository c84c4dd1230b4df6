"""``python -m study dashboard``: optuna-dashboard over a study's ``optuna.db``, on this machine only.

    python -m study dashboard --storage-path results/experiments --name demo            # http://127.0.0.1:8080/
    python -m study dashboard --storage-path results/experiments --name demo --port 0   # any free port

The search keeps one Optuna study per architecture (``<name>.<arch>``, maximising ``val_acc``) in
``<experiment>/optuna.db`` (``study/experiment.py``); the dashboard shows their trials, parameters,
history and Optuna's own importance plots, and refreshes while the study runs. It listens on 127.0.0.1:
the dashboard has no authentication, so reach it from elsewhere through an SSH tunnel
(``ssh -L 8080:127.0.0.1:8080 HOST``), not by binding a public address. Needs the ``dashboard`` extra
(``pip install -e '.[dashboard]'``); no Ray, no torch. Stop it with Ctrl-C.
"""
from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from study import experiment
from study.errors import UsageError

HOST = "127.0.0.1"  # no authentication in optuna-dashboard: never bind a public address by default


def storage_url(storage_path: str, name: str) -> str:
    """``sqlite:///<experiment>/optuna.db``; a one-line error when there is none to open."""
    path = experiment.experiment_path(storage_path, name)
    if "://" in path:
        raise UsageError(f"{path} is not a local folder: a study on a URI storage path keeps its Optuna "
                         "studies in the driver's memory, so there is no optuna.db to open")
    db = Path(path) / experiment.OPTUNA_FILE
    if not db.is_file():
        if not (Path(path) / experiment.LAUNCH_FILE).is_file():
            raise UsageError(f"no study {name!r} at {path}")
        raise UsageError(f"study {name!r} has no {experiment.OPTUNA_FILE} yet at {path} "
                         "(the search creates it when the first trial starts)")
    return f"sqlite:///{db}"


def free_port(host: str, port: int) -> int:
    """``port`` when it can be bound on ``host`` (0: any free port), else a one-line error."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        return sock.getsockname()[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-path", required=True, help="experiment root given to run (local)")
    parser.add_argument("--name", required=True, help="experiment name given to run")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free port)")


def main(args: argparse.Namespace) -> int:
    """``python -m study dashboard`` (registered in ``study/__main__.py``); blocks until interrupted."""
    url = storage_url(args.storage_path, args.name)
    try:
        import optuna_dashboard
    except ImportError:
        raise UsageError("optuna-dashboard is not installed: pip install -e '.[dashboard]'") from None
    port = free_port(HOST, args.port)
    # The first line names the address, so a script (or a test) that started us knows where to look.
    print(f"optuna-dashboard on http://{HOST}:{port}/ for {url} (Ctrl-C stops it)", flush=True)
    try:
        optuna_dashboard.run_server(url, host=HOST, port=port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    from study.__main__ import main as cli

    sys.exit(cli(["dashboard", *sys.argv[1:]]))
