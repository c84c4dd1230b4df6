"""Training throughput: whole steps (batch, forward, backward, optimizer) of a preset, timed.

    python -m study bench --store S --preset cnn_kim --set filters=128 --set conv_layers=2 --json
    python -m study bench --store S --original-loop lstm --batch-size 32 --samples 64 --json
    python -m study bench --store S --suite [--json]     # every figure of docs/benchmarks.md, with ratios (suite.py)
    python -m study bench --store S --gpu-suite --device cuda --out DIR   # the GPU table (scripts/gpu_bench.sh)

A few warm-up steps are run first and not timed. The last line printed is one JSON object with at least
``samples_per_s``, ``tokens_per_s`` (real tokens, pads not counted), ``preset``, ``device``, ``threads``,
``batch_size``, ``seq_len_mean``, ``mflop_per_token`` and ``model_gflops`` (the config's FLOPs, flops.py,
per second); ``--preset`` on the CPU adds ``matmul_gflops``, this machine's matrix-product rate measured in
the same process, and ``of_matmul``, the ratio of the two. ``--original-loop`` times the original study's
own loop instead (original_loops.py), so ratios come from the same machine and load. ``--gpu-suite`` is
the GPU counterpart (gpu.py): every preset at its own batch size and at a GPU-sized one, peak GPU
memory, the original study's loops on the same GPU, and a check that the GPU and CPU model routes agree.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from data_prep import store as store_mod
from study.bench.flops import train_flops
from study.train.config import TrainConfig
from study.train.trainer import Session, resolve_device



def bench(cfg: TrainConfig, store: store_mod.Store, *, samples: int, warmup: int = 2, device=None,
          threads: int | None = None, name: str = "", amp: bool = True, gpu_style: bool | None = None) -> dict:
    """Time at least ``samples`` training samples of ``cfg`` (whole steps) after ``warmup`` steps.

    ``amp=False`` turns CUDA autocast off (fp32, TF32 matmuls); ``gpu_style`` forces the model's route.
    ``arch: linear`` has no steps: its whole fit is timed instead (``bench_linear``).
    """
    if cfg.arch == "linear":
        return bench_linear(cfg, store, samples=samples, name=name)
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    session = Session(cfg, store, device)
    if not amp:
        session.amp_dtype = None
    session.model.gpu_style = gpu_style
    train_rows = store.indices("train")
    plan: list[np.ndarray] = []

    def next_batch() -> np.ndarray:
        if not plan:  # a new epoch's bucketed plan when the last one is used up
            plan.extend(session.batcher.plan(train_rows, cfg.batch_size, rng)[::-1])
        return plan.pop()

    session.model.train()
    for _ in range(warmup):
        session.step(next_batch())
    if device.type == "cuda":
        torch.cuda.synchronize()
    done = tokens = padded = steps = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while done < samples:
        rows = next_batch()
        session.step(rows)
        done += len(rows)
        tokens += session.batcher.real_tokens(rows)
        padded += session.batcher.width(rows) * len(rows)
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    flops = train_flops(cfg, dim=store.embeddings.shape[1], num_classes=store.num_classes)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"preset": name or cfg.arch, "peak_gpu_mb": peak, "amp": str(session.amp_dtype or "off"), "samples_per_s": done / seconds, "tokens_per_s": tokens / seconds,
            "device": device.type, "threads": torch.get_num_threads(), "batch_size": cfg.batch_size,
            "seq_len_mean": tokens / done, "padded_len_mean": padded / done, "samples": done,
            # A short run draws batches of random lengths; this rescales to the split's mean review length.
            "samples_per_s_at_mean_len": tokens / seconds / float(session.batcher.lengths[train_rows].mean()),
            "steps": steps, "seconds": seconds, "mflop_per_token": flops.per_token / 1e6,
            "model_gflops": flops.total(tokens=tokens, samples=done) / seconds / 1e9,
            # CPU seconds of this process (all its threads): less sensitive to other jobs than wall time.
            "cpu_seconds": cpu_seconds, "model_gflop_per_cpu_s": flops.total(tokens=tokens, samples=done) / cpu_seconds / 1e9}


def bench_linear(cfg: TrainConfig, store: store_mod.Store, *, samples: int, name: str = "") -> dict:
    """Time one whole fit (vectorizer + solver) of ``arch: linear`` on the first ``samples`` training
    reviews (all of them if fewer): a linear model has no steps to time, its training is the fit."""
    from study.train import linear

    rows = store.indices("train")[:samples]
    reviews = [store.tokens[store.offsets[r]:store.offsets[r + 1]] for r in rows]
    tokens = int(store.lengths[rows].sum()) if cfg.max_len <= 0 else int(np.minimum(store.lengths[rows],
                                                                                     cfg.max_len).sum())
    linear.LinearModel(cfg, store.num_classes).fit(reviews[:64], store.labels[rows[:64]])  # warm-up
    start = time.perf_counter()
    linear.LinearModel(cfg, store.num_classes).fit(reviews, store.labels[rows])
    seconds = time.perf_counter() - start
    done = len(rows)
    return {"preset": name or cfg.arch, "peak_gpu_mb": None, "amp": "off", "samples_per_s": done / seconds,
            "tokens_per_s": tokens / seconds, "device": "cpu", "threads": 1, "batch_size": done,
            "seq_len_mean": tokens / done, "padded_len_mean": tokens / done, "samples": done,
            "samples_per_s_at_mean_len": done / seconds, "steps": 1, "seconds": seconds}
