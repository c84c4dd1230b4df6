"""Training throughput: whole steps (batch, forward, backward, optimizer) of a preset, timed.

    python -m study bench --store S --preset cnn_original [--samples 2048] [--batch-size 64] --json
    python -m study bench --store S --original-loop lstm --batch-size 32 --samples 64 --json
    python -m study bench --store S --suite [--json]     # every figure of docs/benchmarks.md, with ratios
    python -m study bench --store S --gpu-suite --device cuda --out DIR   # the GPU table (scripts/gpu_bench.sh)

A few warm-up steps are run first and not timed. The last line printed is one JSON object with at least
``samples_per_s``, ``tokens_per_s`` (real tokens, pads not counted), ``preset``, ``device``, ``threads``,
``batch_size`` and ``seq_len_mean``. ``--original-loop`` times the original study's own loop instead (original_loops.py), so
ratios come from the same machine and load. ``--suite`` runs the benchmark's targets in one go:
cnn_original vs the original CNN loop, lstm_original vs the original LSTM loop at batch 1 and 32, and lstm_original's
GFLOP/s (7.8 MFLOP per real token, forward + backward of a 2x256 LSTM over 500-d inputs). ``--gpu-suite``
is the GPU counterpart (gpu.py): every preset at its own batch size and at a GPU-sized one, peak GPU
memory, the original study's loops on the same GPU, and a check that the GPU and CPU model routes agree.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

from data_prep import store as store_mod
from study.train.config import TrainConfig
from study.bench.original_loops import original_loop
from study.train.trainer import Session, resolve_device

LSTM_FLOP_PER_TOKEN = 7.8e6
MACHINE_GFLOPS = 110.0  # fp32 matrix-product rate of the 2-core reference machine (docs/original-study.md, section 5)


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
    start = time.perf_counter()
    while done < samples:
        rows = next_batch()
        session.step(rows)
        done += len(rows)
        tokens += session.batcher.real_tokens(rows)
        padded += session.batcher.width(rows) * len(rows)
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"preset": name or cfg.arch, "peak_gpu_mb": peak, "amp": str(session.amp_dtype or "off"), "samples_per_s": done / seconds, "tokens_per_s": tokens / seconds,
            "device": device.type, "threads": torch.get_num_threads(), "batch_size": cfg.batch_size,
            "seq_len_mean": tokens / done, "padded_len_mean": padded / done, "samples": done,
            # A short run draws batches of random lengths; this rescales to the split's mean review length.
            "samples_per_s_at_mean_len": tokens / seconds / float(session.batcher.lengths[train_rows].mean()),
            "steps": steps, "seconds": seconds}


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


def suite(store: store_mod.Store, *, threads: int | None = None, device=None, scale: float = 1.0,
          rounds: int = 3) -> dict:
    """All figures of the issue's performance targets (``scale`` x the samples), measured back to back.

    Other jobs on a shared machine come and go within seconds, so each figure is measured in ``rounds``
    short rounds interleaved with the others, and the best round is kept for each (best-of-N timing).
    """
    from study.train.presets import preset
    if threads:
        torch.set_num_threads(int(threads))
    n = lambda k: max(1, int(k * scale / rounds))  # noqa: E731
    cnn, lstm = (TrainConfig.from_flat(preset(p)) for p in ("cnn_original", "lstm_original"))
    measures = {
        "cnn_original": lambda: bench(cnn, store, samples=n(4096), device=device, name="cnn_original"),
        "original_cnn_b1": lambda: original_loop("cnn", store, samples=n(30), batch_size=1),
        "lstm_original": lambda: bench(lstm, store, samples=n(1152), device=device, name="lstm_original"),
        "original_lstm_b1": lambda: original_loop("lstm", store, samples=n(24), batch_size=1),
        "original_lstm_b32": lambda: original_loop("lstm", store, samples=n(192), batch_size=32),
    }
    runs: dict[str, dict] = {}
    for _ in range(rounds):
        for name, measure in measures.items():
            result = measure()
            if name not in runs or result["samples_per_s"] > runs[name]["samples_per_s"]:
                runs[name] = result
    gflops = runs["lstm_original"]["tokens_per_s"] * LSTM_FLOP_PER_TOKEN / 1e9
    # Our cost per sample follows its real length, the original study's does not (it pads all to the longest), so
    # ours is compared at the split's mean length.
    ours = {k: runs[k]["samples_per_s_at_mean_len"] for k in ("cnn_original", "lstm_original")}
    checks = [
        ("cnn_original / original CNN b1", ours["cnn_original"] / runs["original_cnn_b1"]["samples_per_s"], 50.0),
        ("lstm_original / original LSTM b1", ours["lstm_original"] / runs["original_lstm_b1"]["samples_per_s"], 6.0),
        ("lstm_original / original LSTM b32", ours["lstm_original"] / runs["original_lstm_b32"]["samples_per_s"], 1.5),
        ("lstm_original GFLOP/s / 110", gflops / MACHINE_GFLOPS, 0.5),
    ]
    return {"runs": runs, "lstm_original_gflops": gflops, "rounds": rounds,
            "checks": [{"what": w, "value": v, "target": t, "ok": v >= t} for w, v, t in checks],
            "threads": torch.get_num_threads(), "load": os.getloadavg()}


def format_suite(result: dict) -> str:
    lines = [f"{'run':<14} {'samples/s':>10} {'at mean len':>11} {'tokens/s':>10} {'batch':>5} {'len':>6} "
             f"{'pad_len':>7}"]
    for name, r in result["runs"].items():
        pad = r.get("padded_len_mean", r.get("padded_len", 0))
        at_mean = r.get("samples_per_s_at_mean_len", r["samples_per_s"])
        lines.append(f"{name:<14} {r['samples_per_s']:>10.1f} {at_mean:>11.1f} {r['tokens_per_s']:>10.0f} "
                     f"{r['batch_size']:>5} {r['seq_len_mean']:>6.0f} {pad:>7.0f}")
    lines.append(f"lstm_original: {result['lstm_original_gflops']:.1f} GFLOP/s at 7.8 MFLOP per real token")
    for c in result["checks"]:
        lines.append(f"{c['what']:<28} {c['value']:>7.2f}  target >= {c['target']:<5} "
                     f"{'ok' if c['ok'] else 'MISSED'}")
    load = " ".join(f"{x:.2f}" for x in result["load"])
    lines.append(f"best of {result['rounds']} rounds; threads {result['threads']}, load average {load}")
    return "\n".join(lines)
