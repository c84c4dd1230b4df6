"""The trial: a thin adapter between a Tune config dict and the plain trainer, run in Ray's workers.

    trainable = tune.with_parameters(train_trial, store_uri=uri, store_hash=content_hash)

The store travels as parameters of the trainable, not as hyperparameters, so a trial's config is exactly
its hyperparameters. Each worker process loads a store once (actors are reused) and checks that its
content hash is the one the study was launched with. A study that searches ``embedding`` (the store's
embedding kinds) loads each kind once per worker: the cache is keyed on the kind too.
"""
from __future__ import annotations

import json
import os
import tempfile

import ray
from ray import tune

from data_prep import store as store_mod
from study.search import cores, faults

REPORTED_FILE = "ray_reported_epoch.json"  # written by fit.repair_checkpoints
_STORES: dict[tuple[str, str, str | None], store_mod.Store] = {}  # one load per worker process and kind


def cached_store(uri: str, expected_hash: str, embedding: str | None = None) -> store_mod.Store:
    """The store at ``uri`` with the ``embedding`` kind's table (None: the store's default kind)."""
    key = (uri, expected_hash, embedding)
    if key not in _STORES:
        loaded = store_mod.load(uri, embedding=embedding)
        if loaded.content_hash != expected_hash:
            raise store_mod.StoreError(f"store {uri} changed since launch (hash {loaded.content_hash[:12]}, "
                                       f"launched with {expected_hash[:12]})")
        _STORES[key] = loaded
    return _STORES[key]


def train_trial(config: dict, *, store_uri: str, store_hash: str, experiment_path: str | None = None) -> None:
    """Tune function trainable: config -> TrainConfig -> trainer.train, one report + checkpoint per epoch."""
    import torch

    from study.train import trainer
    from study.train.config import TrainConfig

    cfg = TrainConfig.from_flat(config)
    faults.fail_if_asked(config)
    store = cached_store(store_uri, store_hash, cfg.embedding_kind)
    context = ray.get_runtime_context()
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    # Logical GPUs (declared with --num-gpus on a machine without CUDA) still get ids: fall back to CPU.
    device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
    threads = max(1, int(context.get_assigned_resources().get("CPU", 1)))
    tags = {"arch": cfg.arch, "embedding_kind": store.embedding_kind, "node_id": context.get_node_id(), "gpu_ids": gpu_ids, "pid": os.getpid()}

    resume, resumed_from, replay = None, 0, []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = trainer.load_checkpoint(folder)
            replay = _unreported_epochs(folder, resume)
        resumed_from = int(resume.get("epoch", 0))

    def on_epoch(metrics: dict, get_state) -> None:
        # In the trial's working folder (inside Ray's session dir), so a killed worker leaves no litter in /tmp.
        with tempfile.TemporaryDirectory(prefix="ckpt-", dir=os.getcwd()) as folder:
            trainer.save_checkpoint(get_state(), folder)
            tune.report({**metrics, **tags, "resumed_from": resumed_from},
                        checkpoint=tune.Checkpoint.from_directory(folder))
        # Idle cores at the study's tail (study/search/cores.py): the next epoch may use more threads.
        torch.set_num_threads(cores.threads_for(experiment_path, tune.get_context().get_trial_id(), threads))

    for metrics in replay[:-1]:
        tune.report({**metrics, **tags, "resumed_from": resumed_from})
    if replay:  # the newest replayed epoch carries the checkpoint again, so Ray's state names it
        on_epoch(replay[-1], lambda: resume)
    trainer.train(cfg, store, device=device, threads=threads, resume=resume, on_epoch=on_epoch)


def _unreported_epochs(folder: str, state: dict) -> list[dict]:
    """Epochs this checkpoint holds that Ray never recorded: ``study resume`` puts a newer checkpoint in
    place of one Ray deleted before a crash and writes the epoch Ray's metrics had reached beside it
    (``REPORTED_FILE``); the trial reports the missing epochs from the checkpoint's history first, so its
    metrics always match its checkpoint's epoch."""
    marker = os.path.join(folder, REPORTED_FILE)
    if not os.path.exists(marker):
        return []
    with open(marker) as handle:
        reported = int(json.load(handle)["epoch"])
    return [dict(m) for m in state.get("history", []) if int(m["epoch"]) > reported]


def trainable(store_uri: str, store_hash: str, cpus: float, gpus: float, experiment_path: str | None = None):
    """The trainable Tune runs: the trial function with its store and its resources."""
    return tune.with_resources(tune.with_parameters(train_trial, store_uri=store_uri, store_hash=store_hash,
                                                    experiment_path=experiment_path), {"cpu": cpus, "gpu": gpus})
