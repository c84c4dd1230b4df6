"""The experiment folder's layout: what the search writes and the analysis reads. No Ray, no torch.

    <storage-path>/<name>/
        launch.json     the study's settings, written once Tune has saved its own state (so a name with a
                        launch.json can always be resumed); ``closed: true`` once ``resume --keep-budget-cut``
                        has closed the study
        trials.json     one entry per trial (id, arch, status, config, last result, error), rewritten by
                        the driver whenever a trial reports, finishes or fails; status ``BUDGET_CUT`` for
                        a trial ``--time-budget-s`` interrupted, until a resume trains it
        repeats/        ``study run --repeats R``: a second Tune experiment re-training chosen trials with
                        other seeds; its own trials.json, and plan.json ([{repeat_of, config}], written
                        before the first repeat starts)
        optuna.db       the Optuna studies (one per architecture), for optuna-dashboard; kept consistent
                        with Ray's trials by ``study/search/optuna_sync.py``
        budget_cut.json {trial_id: last epoch} of the trials ``--time-budget-s`` interrupted, until a
                        ``resume`` trains them (see docs/reliability.md)
        ...             Ray Tune's own state, trial folders and checkpoints

``storage-path`` is a local folder, an NFS path or a URI that pyarrow's filesystems accept.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from study.errors import UsageError

LAUNCH_FILE = "launch.json"
TRIALS_FILE = "trials.json"
OPTUNA_FILE = "optuna.db"
REPEATS_DIR = "repeats"
PLAN_FILE = "plan.json"
BUDGET_FILE = "budget_cut.json"
BUDGET_CUT = "BUDGET_CUT"  # trials.json status of a trial --time-budget-s interrupted; resume trains it


class ExperimentError(UsageError):
    """A missing or unreadable experiment; the message is one line."""


def experiment_path(storage_path: str, name: str) -> str:
    if "://" in storage_path:
        return f"{storage_path.rstrip('/')}/{name}"
    return str(Path(storage_path).expanduser().resolve() / name)


def _filesystem(path: str):
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(path) if "://" in path else (pafs.LocalFileSystem(), path)


def write_json(path: str, data) -> None:
    """Write JSON so that a reader never sees half a file (local: temp file + rename)."""
    text = json.dumps(data, indent=1, default=str).encode()
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        Path(tmp).write_bytes(text)
        os.replace(tmp, path)
        return
    fs, p = _filesystem(path)
    fs.create_dir(p.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(p) as handle:
        handle.write(text)


def check_writable(path: str) -> None:
    """Refuse a local experiment folder that could not be created or written, without creating anything."""
    if "://" in path:
        return  # remote storage reports its own errors when Tune first writes
    folder = Path(path)
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"storage path {path} is not writable ({folder} is not a writable folder)")


def read_json(path: str):
    """The parsed file, or None when it does not exist."""
    fs, p = _filesystem(path)
    try:
        with fs.open_input_stream(p) as handle:
            return json.loads(handle.readall())
    except (FileNotFoundError, OSError):
        return None


