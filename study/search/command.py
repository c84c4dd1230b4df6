"""``study run``, ``study resume``, ``study status``: a Ray Tune study over several architectures.

One experiment holds all architectures so they share the cluster; each search-space file gets exactly
``--num-samples`` trials (``searcher.py``), aimed at the accuracy-vs-cost front (``--objective front``,
cost ``--cost``) or at accuracy alone, and stopped early by one ASHA per architecture on ``val_acc``
(``scheduler.py``); each trial is the thin adapter of ``trial.py``. With ``--repeats R``, chosen trials are
then trained again with R more seeds (``repeats.py``). The experiment folder's layout is in
``study/experiment.py``.

    python -m study run --store S --space search_spaces/cnn.yaml --space search_spaces/lstm.yaml \\
        --name demo --storage-path results/ray --num-samples 8 [--address HOST:PORT] [--gpus-per-trial 0.25] \\
        [--objective front|accuracy] [--cost train_time_s] [--repeats 2] [--price-per-hour cpu=0.048,gpu=3.2]
    python -m study resume --storage-path results/ray --name demo [--repeats 2]
    python -m study status --storage-path results/ray --name demo [--json]

Ray is imported only inside ``run`` and ``resume``, after ``ray_env.connect`` has prepared its environment;
``status`` reads ``trials.json`` and never imports Ray.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from data_prep import store as store_mod
from study import experiment
from study.errors import UsageError, reported_as_usage
from study.search import spaces as spaces_mod
from study.search.ray_env import connect
from study.train.config import TrainConfig


def _tune_parts():
    """Ray's pieces, imported once ``connect`` has run."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from study.search import fit, progress, scheduler, searcher, trial
    return tune, CSVLoggerCallback, JsonLoggerCallback, scheduler, progress, searcher, trial, fit


def trial_dirname(trial) -> str:
    """Short trial folders (Ray's default name embeds every config value)."""
    return f"{trial.config.get('arch', 'trial')}_{trial.trial_id}"


RUN_ARGS = ("store", "space", "name", "storage_path", "num_samples", "max_epochs", "cpus_per_trial",
            "gpus_per_trial", "seed", "time_budget_s", "max_concurrent", "max_failures", "repeats",
            "price_per_hour", "objective", "cost")


def run(args, restart: bool = False) -> int:
    """``restart``: ``resume`` found no Tune state to restore (killed before Tune's first snapshot), so the
    study starts again under its launch.json instead of refusing the name."""
    started = time.time()
    if args.num_samples < 1:
        raise UsageError("--num-samples must be >= 1")
    if args.repeats < 0:
        raise UsageError("--repeats must be >= 0")
    parse_price(args.price_per_hour)  # bad prices fail before Ray starts
    path = experiment.experiment_path(args.storage_path, args.name)
    with reported_as_usage(spaces_mod.SpaceError, store_mod.StoreError):
        spaces = [spaces_mod.load_space(f) for f in args.space]
        if "://" not in args.store:
            args.store = os.path.abspath(args.store)  # trial workers run in their own working directories
        manifest = store_mod.read_manifest(args.store)
    arches = [s.arch for s in spaces]
    if len(set(arches)) != len(arches):
        raise UsageError(f"two --space files for the same architecture: {arches}")
    _check_objective(args, spaces, manifest)
    overrides = {"epochs": args.max_epochs} if args.max_epochs else {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    epochs = {s.arch: TrainConfig.from_flat(s.fixed_with(overrides)).epochs for s in spaces}
    max_t = max(epochs.values())
    total = args.num_samples * len(spaces)
    exists = UsageError(f"experiment {args.name!r} already exists at {path}; continue it with "
                        f"`python -m study resume --storage-path {args.storage_path} --name {args.name}` "
                        f"or choose another --name")
    if experiment.read_json(f"{path}/{experiment.LAUNCH_FILE}") is not None and not restart:
        raise exists  # before starting Ray: the common case answers at once
    experiment.check_writable(path)
    connect(args.address)
    tune, CSVLogger, JsonLogger, scheduler_mod, progress, searcher_mod, trial_mod, fit = _tune_parts()
    # Tune state without a launch.json is a launch that died before Tune's first step: the name is free.
    local = "://" not in path
    launch = {"store": args.store, "store_hash": manifest["content_hash"], "spaces": args.space,
              "arches": arches, "num_samples": args.num_samples, "total_trials": total, "max_epochs": max_t,
              "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial,
              "seed": args.seed, "max_failures": args.max_failures, "max_concurrent": args.max_concurrent,
              "repeats": args.repeats, "price_per_hour": parse_price(args.price_per_hour),
              "objective": args.objective, "cost": args.cost, "time_budget_s": args.time_budget_s,
              "created": time.time(), "run_args": {k: getattr(args, k) for k in RUN_ARGS}}
    snapshot = progress.TrialsSnapshot(path, launch)  # writes launch.json once Tune has saved its state
    if local:
        Path(path).mkdir(parents=True, exist_ok=True)  # optuna.db goes here before Tune starts

    scheduler = scheduler_mod.ArchASHA(epochs, metric=searcher_mod.METRIC, mode=searcher_mod.MODE)
    searcher = searcher_mod.ArchSearcher(
        spaces, args.num_samples, seed=args.seed or 0, study_name=args.name, overrides=overrides,
        storage_url=f"sqlite:///{path}/{experiment.OPTUNA_FILE}" if local else None,
        objective=args.objective, cost=args.cost, scheduler=scheduler)
    if restart:
        searcher.close_orphans()  # Optuna trials the killed first attempt asked belong to no trial now
    tuner = tune.Tuner(
        trial_mod.trainable(args.store, manifest["content_hash"], args.cpus_per_trial, args.gpus_per_trial, path),
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=total, reuse_actors=True, scheduler=scheduler,
            max_concurrent_trials=args.max_concurrent,
            trial_dirname_creator=trial_dirname, trial_name_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=args.name, storage_path=args.storage_path if not local else str(Path(path).parent),
            verbose=0, callbacks=[scheduler_mod.StopReasons(scheduler), searcher_mod.CloseAtEnd(searcher),
                                  progress.ProgressLine(total), snapshot, JsonLogger(), CSVLogger(),
                                  *_budget(progress, args.time_budget_s, snapshot, searcher), _rebuild(scheduler),
                                  _core_share(path, total, args.cpus_per_trial), _rerun_sync(searcher, args.name),
                                  *_fault_hooks()],
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    aim = f"front of val_acc vs {args.cost}" if args.objective == "front" else "val_acc"
    print(f"study {args.name}: {total} trials ({args.num_samples} x {', '.join(arches)}), aiming at {aim} "
          f"-> {path}", flush=True)
    slots = fit.slots(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent, total)
    return fit.fit(tuner, path, started, slots) | fit.then_repeats(path, launch)


def _check_objective(args, spaces, manifest) -> None:
    """--objective/--cost name things the trials record; searched embedding kinds exist in the store."""
    from study.analysis.pareto import DERIVED_COSTS
    from study.analysis.table import METRICS
    from study.search.objectives import METRIC, OBJECTIVES
    from study.train.metrics import COST_KEYS

    if args.objective not in OBJECTIVES:
        raise UsageError(f"--objective must be one of {', '.join(OBJECTIVES)}")
    costs = [m for m in dict.fromkeys((*COST_KEYS, *METRICS))
             if m not in (METRIC, "test_acc", "macro_f1", "majority_share", "epochs", "train_loss", "val_loss")]
    if args.cost not in costs:
        extra = f" ({args.cost} is derived after the study)" if args.cost in DERIVED_COSTS else ""
        raise UsageError(f"--cost must be a metric every trial reports, one of {', '.join(costs)}{extra}")
    kinds = store_mod.embedding_kinds(manifest)
    for space in spaces:
        param = space.params.get("embedding")
        wanted = list(param.choices) if param else [space.fixed["embedding"]] if "embedding" in space.fixed else []
        missing = [k for k in wanted if k and k not in kinds]
        if missing:
            raise UsageError(f"{space.path}: embedding {missing[0]!r} is not in the store, which has "
                             f"{', '.join(kinds)} (data_prep build --embeddings ...)")


def _budget(progress, budget_s: float | None, snapshot, searcher) -> list:
    """``--time-budget-s`` as our callback, not Tune's: the trials it cuts stay resumable, and Optuna is
    told they were cut (budget-cut) before Tune saves its state. Always present (None: no budget) so that
    ``resume --time-budget-s`` can set one."""
    return [progress.TimeBudget(budget_s, snapshot, searcher)]


def _rebuild(scheduler):
    """On resume, the scheduler's rungs are rebuilt from the recorded results (Tune does not save them)."""
    from study.search.rebuild import SchedulerRebuild

    return SchedulerRebuild(scheduler)


def _core_share(path: str, total: int, cpus_per_trial: float):
    """Idle cores at the study's tail go to the trials still training (study/search/cores.py)."""
    from study.search.cores import CoreShare

    return CoreShare(path, total, cpus_per_trial)


def _rerun_sync(searcher, name: str):
    """Re-runs of errored or budget-cut trials reach optuna.db as new trials (study/search/optuna_sync.py)."""
    from study.search.optuna_sync import RerunSync

    return RerunSync(searcher, name)


def _fault_hooks() -> list:
    from study.search import faults

    return faults.callbacks()


def resume(args) -> int:
    started = time.time()
    path = experiment.experiment_path(args.storage_path, args.name)
    launch = experiment.read_json(f"{path}/{experiment.LAUNCH_FILE}")
    missing = UsageError(f"no study {args.name!r} to resume at {path}")
    if launch is None:
        raise missing
    if launch.get("closed"):
        raise UsageError(f"study {args.name!r} was closed by `resume --keep-budget-cut`; nothing to resume")
    _check_store(launch)
    launch = _with_repeats(path, launch, args.repeats)
    if args.keep_budget_cut:
        return _close(path, args.name, launch)
    connect(args.address)
    tune, *_, trial_mod, fit = _tune_parts()
    if not tune.Tuner.can_restore(path) or not _has_snapshot(tune, path):
        if "run_args" not in launch:
            raise missing
        print(f"study {args.name} was stopped before Tune's first snapshot: starting it again", flush=True)
        run_args = {**launch["run_args"], "repeats": launch.get("repeats", 0)}  # resume --repeats counts
        return run(argparse.Namespace(**run_args, address=args.address), restart=True)
    fit.repair_checkpoints(path)
    from study.search.progress import TimeBudget

    TimeBudget.for_resume(args.time_budget_s)  # the launch's budget does not cut the resumed study again
    tuner = tune.Tuner.restore(
        path, trial_mod.trainable(launch["store"], launch["store_hash"], launch["cpus_per_trial"],
                                  launch["gpus_per_trial"], path),
        resume_unfinished=True, resume_errored=True)
    print(f"resuming study {args.name} ({launch['total_trials']} trials) from {path}", flush=True)
    slots = fit.slots(launch["cpus_per_trial"], launch["gpus_per_trial"], launch.get("max_concurrent"),
                      launch["total_trials"])
    return fit.fit(tuner, path, started, slots) | fit.then_repeats(path, launch)


def _has_snapshot(tune, path: str) -> bool:
    """Whether Tune saved its experiment state (the trials) at least once."""
    try:
        tune.ExperimentAnalysis(path)
    except ValueError:  # "No experiment snapshot file ... was found"
        return False
    return True


def _check_store(launch: dict) -> None:
    """The store must still be the one the study was launched with (every trial checks it too)."""
    with reported_as_usage(store_mod.StoreError):
        manifest = store_mod.read_manifest(launch["store"])
        if manifest["content_hash"] != launch["store_hash"]:
            raise store_mod.StoreError(f"store {launch['store']} changed since launch (hash "
                                       f"{manifest['content_hash'][:12]}, launched with {launch['store_hash'][:12]})")
        store_mod.verify(launch["store"])  # files edited under an unchanged manifest


def _close(path: str, name: str, launch: dict) -> int:
    """``resume --keep-budget-cut``: keep the trials the budget cut unrun and close the study, no Ray."""
    from study.search import optuna_sync

    cut = experiment.read_json(f"{path}/{experiment.BUDGET_FILE}") or {}
    if "://" not in path:
        optuna_sync.close_trials(f"sqlite:///{path}/{experiment.OPTUNA_FILE}", name, set(cut))
    experiment.write_json(f"{path}/{experiment.LAUNCH_FILE}", {**launch, "closed": True})
    print(f"study {name} closed: {len(cut)} trials cut by the time budget stay unrun "
          f"({', '.join(sorted(cut)) or 'none'})", flush=True)
    return 0


# ------------------------------------------------------------------------- repeats and prices (repeats.py)

def parse_price(text: str | None) -> dict[str, float] | None:
    """``cpu=0.048,gpu=3.2`` -> {"cpu": 0.048, "gpu": 3.2}: price per hour of one CPU and of one GPU."""
    if not text:
        return None
    price = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        try:
            price[key.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--price-per-hour wants cpu=PRICE,gpu=PRICE, got {text!r}") from None
    if not set(price) <= {"cpu", "gpu"} or any(v < 0 for v in price.values()):
        raise UsageError(f"--price-per-hour wants cpu=PRICE,gpu=PRICE (non-negative), got {text!r}")
    return {"cpu": price.get("cpu", 0.0), "gpu": price.get("gpu", 0.0)}


def _with_repeats(path: str, launch: dict, repeats: int | None) -> dict:
    """``resume --repeats R``: record R with the study (once planned, R cannot change)."""
    if repeats is None or repeats == launch.get("repeats"):
        return launch
    if repeats < 0:
        raise UsageError("--repeats must be >= 0")
    plan = experiment.read_json(f"{path}/{experiment.REPEATS_DIR}/{experiment.PLAN_FILE}")
    if plan:
        raise UsageError(f"the repeats of this study are planned with --repeats {launch.get('repeats')}; "
                         f"resume without --repeats to continue them")
    launch = {**launch, "repeats": repeats}
    experiment.write_json(f"{path}/{experiment.LAUNCH_FILE}", launch)
    return launch


def status(args) -> int:
    from study.analysis.results import trials_frame

    from study.analysis.table import stop_reasons

    frame = trials_frame(experiment.experiment_path(args.storage_path, args.name))
    if len(frame):  # how each trial ended: finished, early-stopped (ASHA), budget-cut (resume trains it), ...
        frame["stop_reason"] = stop_reasons(frame)
    cols = ["trial_id", "arch", "status", "stop_reason", "epochs", "val_acc", "test_acc", "train_time_s",
            "repeat_of", "node_id", "gpu_ids"]
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

def add_run_arguments(p) -> None:
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
    p.add_argument("--repeats", type=int, default=0,
                   help="after the search, train each front member and each architecture's best R more "
                        "times with other seeds (not counted as search trials)")
    p.add_argument("--price-per-hour", metavar="cpu=P,gpu=P",
                   help="price of one CPU and one GPU per hour: adds train_cost and cost_per_1m_reviews")
    p.add_argument("--objective", default="front", help="front (default): maximise val_acc and minimise "
                   "--cost, two directions per Optuna study; accuracy: maximise val_acc alone")
    p.add_argument("--cost", default="train_time_s", help="the cost the front objective minimises: a metric "
                   "every trial reports (default train_time_s)")


def add_resume_arguments(p) -> None:
    p.add_argument("--storage-path", required=True, help="experiment root given to run")
    p.add_argument("--name", required=True, help="experiment name given to run")
    p.add_argument("--repeats", type=int, help="add repeats to a study run without them (see run --repeats)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else start Ray locally)")
    p.add_argument("--time-budget-s", type=float, help="stop this resumed session after this many seconds "
                   "(the run's budget is not applied again)")
    p.add_argument("--keep-budget-cut", action="store_true",
                   help="do not train the trials --time-budget-s cut: close the study as it is (no Ray)")


def add_status_arguments(p) -> None:
    p.add_argument("--storage-path", required=True, help="experiment root given to run")
    p.add_argument("--name", required=True, help="experiment name given to run")
    p.add_argument("--json", action="store_true", help="also print {\"trials\": [...]} as the last line")
