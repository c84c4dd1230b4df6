"""The Ray Tune study: run, resume and inspect a search over several architectures on a Ray cluster.

Every Ray import of the project lives here. One experiment holds all architectures so they share the
cluster; each search-space file gets exactly ``--num-samples`` trials, searched by its own seeded Optuna
TPE study (all studies in ``<experiment>/optuna.db`` for optuna-dashboard) and stopped early by ASHA on
``val_acc``. A trial is a thin adapter: flat config -> ``TrainConfig`` -> ``trainer.train``, one
``tune.report`` with a checkpoint per epoch.

    python -m study run --store S --space search_spaces/cnn.yaml --space search_spaces/lstm.yaml \
        --name demo --storage-path results/ray --num-samples 8 [--address HOST:PORT] [--gpus-per-trial 0.25]
    python -m study resume --storage-path results/ray --name demo
    python -m study status --storage-path results/ray --name demo [--json]

Why exactly K per space: ``ArchSearcher`` hands out architectures round-robin and refuses an architecture
once it has K trials; its counters are saved by Tune together with the trial list, so a resumed study
continues the same count and never repeats or adds a trial.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the old engine honours verbose=0 and our own view
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no TensorBoard files; JSON+CSV below
# Checkpointing every epoch with num_to_keep=1 forces a state snapshot per epoch: wanted (a resumed study
# must find every reported checkpoint), so Ray's warning about it is noise here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402
from ray.tune.search import Searcher  # noqa: E402

from data_prep import store as store_mod  # noqa: E402
from study import spaces as spaces_mod  # noqa: E402
from study.config import UsageError  # noqa: E402

METRIC, MODE = "val_acc", "max"
LAUNCH_FILE = "launch.json"
PRIVATE = ("_store", "_store_hash")  # config keys that are plumbing, not hyperparameters


class LaunchError(UsageError):
    """A user error (existing name, missing experiment, bad store); the message is one line."""


# ------------------------------------------------------------------------------------------ the trial

_STORES: dict[tuple[str, str], object] = {}  # one load per worker process (actors are reused)


def _cached_store(uri: str, expected_hash: str):
    key = (uri, expected_hash)
    if key not in _STORES:
        loaded = store_mod.load(uri)
        if loaded.content_hash != expected_hash:
            raise store_mod.StoreError(f"store {uri} changed since launch (hash {loaded.content_hash[:12]}, "
                                       f"launched with {expected_hash[:12]})")
        _STORES[key] = loaded
    return _STORES[key]


def train_trial(config: dict) -> None:
    """Tune function trainable: the thin adapter between a Tune config dict and the plain trainer."""
    import torch

    from study import trainer
    from study.config import TrainConfig

    flat = {k: v for k, v in config.items() if k not in PRIVATE}
    cfg = TrainConfig.from_flat(flat)
    store = _cached_store(config["_store"], config["_store_hash"])
    context = ray.get_runtime_context()
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    # Logical GPUs (declared with --num-gpus on a machine without CUDA) still get ids: fall back to CPU.
    device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
    threads = max(1, int(context.get_assigned_resources().get("CPU", 1)))
    tags = {"arch": cfg.arch, "node_id": context.get_node_id(), "gpu_ids": gpu_ids, "pid": os.getpid()}

    resume, resumed_from = None, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = trainer.load_checkpoint(folder)
        resumed_from = int(resume.get("epoch", 0))

    def on_epoch(metrics: dict, get_state) -> None:
        # In the trial's working folder (inside Ray's session dir), so a killed worker leaves no litter in /tmp.
        with tempfile.TemporaryDirectory(prefix="ckpt-", dir=os.getcwd()) as folder:
            trainer.save_checkpoint(get_state(), folder)
            tune.report({**metrics, **tags, "resumed_from": resumed_from},
                        checkpoint=tune.Checkpoint.from_directory(folder))

    trainer.train(cfg, store, device=device, threads=threads, resume=resume, on_epoch=on_epoch)


# ---------------------------------------------------------------------------------------- the search

class ArchSearcher(Searcher):
    """Round-robin over architectures; one seeded OptunaSearch (TPE) per architecture, K trials each."""

    def __init__(self, spaces: list, per_space: int, *, seed: int, storage_url: str | None,
                 study_name: str, overrides: dict):
        super().__init__(metric=METRIC, mode=MODE)
        import optuna
        from ray.tune.search.optuna import OptunaSearch  # here: trial workers need not import Optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(storage_url) if storage_url else None
        self.order = [s.arch for s in spaces]
        self.per_space = per_space
        self.fixed = {s.arch: {**s.fixed, **overrides, "arch": s.arch} for s in spaces}
        self.counts = {arch: 0 for arch in self.order}
        self.arch_of: dict[str, str] = {}
        # One study per architecture keeps TPE's good/bad split within comparable trials.
        self.searchers = {
            s.arch: OptunaSearch(space=spaces_mod.optuna_distributions(s), metric=METRIC, mode=MODE,
                                 sampler=optuna.samplers.TPESampler(seed=seed + i), storage=storage,
                                 study_name=f"{study_name}.{s.arch}")
            for i, s in enumerate(spaces)}

    def suggest(self, trial_id: str):
        open_ = [a for a in self.order if self.counts[a] < self.per_space]
        if not open_:
            return Searcher.FINISHED
        arch = min(open_, key=lambda a: self.counts[a])  # ties resolve in file order: round-robin
        params = self.searchers[arch].suggest(trial_id)
        self.counts[arch] += 1
        self.arch_of[trial_id] = arch
        return {**self.fixed[arch], **params}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.arch_of and METRIC in result:
            self.searchers[self.arch_of[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.arch_of:
            self.searchers[self.arch_of[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))
        self._close_orphans()

    def _close_orphans(self) -> None:
        """Optuna trials asked after Tune's last snapshot belong to no Tune trial: mark them FAIL so the
        SQLite study (and optuna-dashboard) shows no trial running forever after a crash."""
        from optuna.trial import TrialState

        for searcher in self.searchers.values():
            study = searcher._ot_study  # OptunaSearch keeps its study and asked trials privately
            live = {trial._trial_id for trial in searcher._ot_trials.values()}
            for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if frozen._trial_id not in live:
                    study._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)


class ProgressLine(tune.Callback):
    """One line every few seconds instead of Ray's tables: counts by status and best val_acc per arch."""

    def __init__(self, total: int, every_s: float = 5.0):
        self.total, self.every_s = total, every_s
        self.best: dict[str, float] = {}
        self._last = 0.0
        self._start = time.time()

    def setup(self, **info):
        self._start = time.time()  # also on resume (the callback comes back from tuner.pkl)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        arch, value = result.get("arch"), result.get(METRIC)
        if arch is not None and value is not None:
            self.best[arch] = max(self.best.get(arch, float("-inf")), float(value))

    def on_step_end(self, iteration, trials, **info):
        if time.time() - self._last >= self.every_s:
            self._print(trials)

    def on_experiment_end(self, trials, **info):
        self._print(trials)

    def _print(self, trials) -> None:
        self._last = time.time()
        by = {}
        for trial in trials:
            by[trial.status] = by.get(trial.status, 0) + 1
        done, running, errored = by.get("TERMINATED", 0), by.get("RUNNING", 0), by.get("ERROR", 0)
        pending = self.total - done - running - errored  # includes trials the searcher has not made yet
        best = "  ".join(f"{a} {v:.3f}" for a, v in sorted(self.best.items())) or "-"
        print(f"[{time.time() - self._start:6.0f}s] {done}/{self.total} done, {running} running, "
              f"{pending} pending, {errored} errored | best {METRIC}: {best}", flush=True)


# ------------------------------------------------------------------------------------ ray and storage

def connect(address: str | None) -> None:
    """Join ``address`` (or RAY_ADDRESS), else start Ray here: quiet, no dashboard, nothing in ~/.ray."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if not address and "RAY_AUTH_MODE" not in os.environ:
        # Ray >= 2.5x turns token auth on for a fresh local cluster and writes ~/.ray/auth_token; keep the
        # protection but give this private cluster its own token in the environment instead.
        os.environ["RAY_AUTH_MODE"] = "token"
        if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        from ray._raylet import AuthenticationTokenLoader, Config  # re-read the env (cached at import)

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=True, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise LaunchError(f"cannot connect to Ray at {address or 'a new local instance'}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def experiment_path(storage_path: str, name: str) -> str:
    if "://" in storage_path:
        return f"{storage_path.rstrip('/')}/{name}"
    return str(Path(storage_path).expanduser().resolve() / name)


def _fs(path: str):
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(path) if "://" in path else (pafs.LocalFileSystem(), path)


def _write_json(path: str, data: dict) -> None:
    fs, p = _fs(path)
    fs.create_dir(p.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(p) as handle:
        handle.write(json.dumps(data, indent=1).encode())


def _read_json(path: str) -> dict | None:
    fs, p = _fs(path)
    try:
        with fs.open_input_stream(p) as handle:
            return json.loads(handle.readall())
    except (FileNotFoundError, OSError):
        return None


def trial_dirname(trial) -> str:
    """Short trial folders (Ray's default name embeds every config value, the store path included)."""
    return f"{trial.config.get('arch', 'trial')}_{trial.trial_id}"


def _trainable(cpus: float, gpus: float):
    return tune.with_resources(train_trial, {"cpu": cpus, "gpu": gpus})


# --------------------------------------------------------------------------------------------- commands

def run(args) -> int:
    started = time.time()
    if args.num_samples < 1:
        raise LaunchError("--num-samples must be >= 1")
    path = experiment_path(args.storage_path, args.name)
    if _read_json(f"{path}/{LAUNCH_FILE}") is not None or tune.Tuner.can_restore(path):
        raise LaunchError(f"experiment {args.name!r} already exists at {path}; continue it with "
                          f"`python -m study resume --storage-path {args.storage_path} --name {args.name}` "
                          f"or choose another --name")
    spaces = [spaces_mod.load_space(f) for f in args.space]
    arches = [s.arch for s in spaces]
    if len(set(arches)) != len(arches):
        raise LaunchError(f"two --space files for the same architecture: {arches}")
    if "://" not in args.store:
        args.store = os.path.abspath(args.store)  # trial workers run in their own working directories
    manifest = store_mod.read_manifest(args.store)
    overrides = {"epochs": args.max_epochs} if args.max_epochs else {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    max_t = max(int({**s.fixed, **overrides}.get("epochs", 5)) for s in spaces)
    total = args.num_samples * len(spaces)
    local = "://" not in path
    launch = {"store": args.store, "store_hash": manifest["content_hash"], "spaces": args.space,
              "arches": arches, "num_samples": args.num_samples, "total_trials": total, "max_epochs": max_t,
              "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial,
              "seed": args.seed, "max_failures": args.max_failures, "created": time.time()}
    connect(args.address)
    _write_json(f"{path}/{LAUNCH_FILE}", launch)  # claims the name; written once Ray is reachable

    searcher = ArchSearcher(spaces, args.num_samples, seed=args.seed or 0, study_name=args.name,
                            storage_url=f"sqlite:///{path}/optuna.db" if local else None, overrides=overrides)
    tuner = tune.Tuner(
        _trainable(args.cpus_per_trial, args.gpus_per_trial),
        param_space={"_store": args.store, "_store_hash": manifest["content_hash"]},
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=total, reuse_actors=True,
            scheduler=ASHAScheduler(metric=METRIC, mode=MODE, max_t=max_t, grace_period=1),
            max_concurrent_trials=args.max_concurrent, time_budget_s=args.time_budget_s,
            trial_dirname_creator=trial_dirname, trial_name_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=args.name, storage_path=args.storage_path if not local else str(Path(path).parent),
            verbose=0, callbacks=[ProgressLine(total), JsonLoggerCallback(), CSVLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    print(f"study {args.name}: {total} trials ({args.num_samples} x {', '.join(arches)}) -> {path}", flush=True)
    return _fit(tuner, args.storage_path, args.name, started)


def resume(args) -> int:
    started = time.time()
    path = experiment_path(args.storage_path, args.name)
    launch = _read_json(f"{path}/{LAUNCH_FILE}")
    if launch is None or not tune.Tuner.can_restore(path):
        raise LaunchError(f"no study {args.name!r} to resume at {path}")
    _repair_checkpoints(path)
    connect(args.address)
    tuner = tune.Tuner.restore(path, _trainable(launch["cpus_per_trial"], launch["gpus_per_trial"]),
                               resume_unfinished=True, resume_errored=True)
    print(f"resuming study {args.name} ({launch['total_trials']} trials) from {path}", flush=True)
    return _fit(tuner, args.storage_path, args.name, started)


def _repair_checkpoints(path: str) -> None:
    """Ray deletes a trial's previous checkpoint as soon as it registers the next one (num_to_keep) but
    uploads the experiment state in the background, so after a crash the saved state can name a checkpoint
    that is gone. Put the trial's newest checkpoint in its place: ours carry epoch, history and RNG state,
    so the trial continues from the newer point instead of failing to restore."""
    import pyarrow.fs as pafs

    for trial in tune.ExperimentAnalysis(path).trials:
        checkpoint = trial.checkpoint
        if checkpoint is None:
            continue
        fs, missing = checkpoint.filesystem, checkpoint.path
        if fs.get_file_info(missing).type != pafs.FileType.NotFound:
            continue
        trial_dir = missing.rsplit("/", 1)[0]
        found = sorted(info.path for info in fs.get_file_info(pafs.FileSelector(trial_dir))
                       if info.base_name.startswith("checkpoint_") and info.type == pafs.FileType.Directory)
        if found:
            fs.create_dir(missing, recursive=True)
            pafs.copy_files(found[-1], missing, source_filesystem=fs, destination_filesystem=fs)
            print(f"trial {trial.trial_id}: {missing.rsplit('/', 1)[1]} was deleted before the crash; "
                  f"continuing from {found[-1].rsplit('/', 1)[1]}", flush=True)


def _fit(tuner, storage_path: str, name: str, started: float) -> int:
    start = time.time()
    tuner.fit()
    wall = time.time() - start
    frame = trials_frame(storage_path, name)
    train_s = float(frame["train_time_s"].fillna(0).sum()) if "train_time_s" in frame else 0.0
    errored = int((frame["status"] == "ERROR").sum()) if len(frame) else 0
    # Ray's overhead at a glance: set-up (Ray start, connect) and the fit's wall time against training time.
    print(f"done: set-up {start - started:.1f}s, study {wall:.1f}s wall; trials trained {train_s:.1f}s "
          f"in total; {errored} errored", flush=True)
    return 1 if errored else 0


def trials_frame(storage_path: str, name: str):
    """One row per trial: ids, arch, status, node, GPUs, last epoch, last metrics and ``config/<key>``."""
    import pandas as pd

    path = experiment_path(storage_path, name)
    if not tune.Tuner.can_restore(path):
        raise LaunchError(f"no study {name!r} at {path}")
    rows = []
    # Trials stopped by the time budget before their first epoch have no results: Ray warns about each.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    for trial in tune.ExperimentAnalysis(path).trials:
        result = dict(trial.last_result or {})
        row = {"trial_id": trial.trial_id, "arch": trial.config.get("arch"), "status": trial.status,
               "node_id": result.pop("node_id", None), "gpu_ids": result.pop("gpu_ids", []),
               "epochs": result.get("epoch", 0), "num_failures": trial.num_failures}
        row.update({k: v for k, v in result.items() if k not in row and k != "config"})
        row.update({f"config/{k}": v for k, v in trial.config.items() if k not in PRIVATE})
        rows.append(row)
    return pd.DataFrame(rows)


def status(args) -> int:
    frame = trials_frame(args.storage_path, args.name)
    cols = ["trial_id", "arch", "status", "epochs", "val_acc", "test_acc", "train_time_s", "node_id", "gpu_ids"]
    if len(frame):
        view = frame[[c for c in cols if c in frame]].copy()
        if "node_id" in view:
            view["node_id"] = view["node_id"].map(lambda n: str(n)[:8] if n else "-")
        print(view.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("  ".join(f"{s}: {n}" for s, n in frame["status"].value_counts().items()))
    else:
        print("no trials yet")
    if args.json:
        records = json.loads(frame.to_json(orient="records")) if len(frame) else []
        print(json.dumps({"trials": records}))
    return 0


# ------------------------------------------------------------------------------------------------- CLI
# ``study/__main__.py`` maps the commands run, resume and status to this module: it calls
# ``add_arguments`` with the command's parser (prog "study run", ...) and ``main`` with the parsed args.

def _run_arguments(p) -> None:
    p.add_argument("--store", required=True, help="store folder or URI every node can read")
    p.add_argument("--space", required=True, action="append", help="search-space YAML (repeatable)")
    p.add_argument("--name", required=True, help="experiment name; must be new (use resume to continue one)")
    p.add_argument("--storage-path", required=True, help="experiment root: local, NFS path or URI")
    p.add_argument("--num-samples", type=int, required=True, help="trials per search space")
    p.add_argument("--max-epochs", type=int, help="override each space's epochs (ASHA's max_t)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs (and torch threads) per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="fractions pack trials on one GPU")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else start Ray locally)")
    p.add_argument("--seed", type=int, default=0, help="seeds the TPE samplers and every trial's training")
    p.add_argument("--time-budget-s", type=float, help="stop starting/continuing trials after this many seconds")
    p.add_argument("--max-concurrent", type=int, help="most trials at once (default: as resources allow)")
    p.add_argument("--max-failures", type=int, default=1, help="retries of a trial whose worker died")


def _resume_arguments(p) -> None:
    p.add_argument("--storage-path", required=True, help="experiment root given to run")
    p.add_argument("--name", required=True, help="experiment name given to run")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else start Ray locally)")


def _status_arguments(p) -> None:
    p.add_argument("--storage-path", required=True, help="experiment root given to run")
    p.add_argument("--name", required=True, help="experiment name given to run")
    p.add_argument("--json", action="store_true", help="also print {\"trials\": [...]} as the last line")


COMMANDS = {"run": (_run_arguments, run), "resume": (_resume_arguments, resume),
            "status": (_status_arguments, status)}


def add_arguments(parser) -> None:
    _arguments, _ = COMMANDS[parser.prog.split()[-1]]
    _arguments(parser)


def main(args) -> int:
    try:
        return COMMANDS[args.command][1](args)
    except (spaces_mod.SpaceError, store_mod.StoreError) as exc:
        raise UsageError(str(exc)) from None
