"""Training throughput: whole steps (batch, forward, backward, optimizer) of a preset, timed.

    python -m study bench --store S --preset cnn_seed [--samples 2048] [--batch-size 64] --json
    python -m study bench --store S --seed-loop lstm --batch-size 32 --samples 64 --json
    python -m study bench --store S --suite [--json]     # every figure of docs/benchmarks.md, with ratios
    python -m study bench --store S --gpu-suite --device cuda --out DIR   # the GPU table (scripts/gpu_bench.sh)

A few warm-up steps are run first and not timed. The last line printed is one JSON object with at least
``samples_per_s``, ``tokens_per_s`` (real tokens, pads not counted), ``preset``, ``device``, ``threads``,
``batch_size`` and ``seq_len_mean``. ``--seed-loop`` times the seed's own loop instead (seedloop.py), so
ratios come from the same machine and load. ``--suite`` runs the issue's targets in one go:
cnn_seed vs the seed CNN loop, lstm_seed vs the seed LSTM loop at batch 1 and 32, and lstm_seed's
GFLOP/s (7.8 MFLOP per real token, forward + backward of a 2x256 LSTM over 500-d inputs). ``--gpu-suite``
is the GPU counterpart: every preset at its own batch size and at a GPU-sized one, peak GPU memory, the
seed's loops on the same GPU, and a check that the GPU and CPU model routes agree there.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from data_prep import store as store_mod
from study.config import TrainConfig, UsageError
from study.seedloop import seed_loop
from study.trainer import Session, resolve_device

LSTM_FLOP_PER_TOKEN = 7.8e6
MACHINE_GFLOPS = 110.0  # fp32 matrix-product rate of the 2-core reference machine (REFERENCE.md section 5)


def bench(cfg: TrainConfig, store: store_mod.Store, *, samples: int, warmup: int = 2, device=None,
          threads: int | None = None, name: str = "", amp: bool = True, gpu_style: bool | None = None) -> dict:
    """Time at least ``samples`` training samples of ``cfg`` (whole steps) after ``warmup`` steps.

    ``amp=False`` turns CUDA autocast off (fp32, TF32 matmuls); ``gpu_style`` forces the model's route.
    """
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


def suite(store: store_mod.Store, *, threads: int | None = None, device=None, scale: float = 1.0,
          rounds: int = 3) -> dict:
    """All figures of the issue's performance targets (``scale`` x the samples), measured back to back.

    Other jobs on a shared machine come and go within seconds, so each figure is measured in ``rounds``
    short rounds interleaved with the others, and the best round is kept for each (best-of-N timing).
    """
    from study.presets import preset
    if threads:
        torch.set_num_threads(int(threads))
    n = lambda k: max(1, int(k * scale / rounds))  # noqa: E731
    cnn, lstm = (TrainConfig.from_flat(preset(p)) for p in ("cnn_seed", "lstm_seed"))
    measures = {
        "cnn_seed": lambda: bench(cnn, store, samples=n(4096), device=device, name="cnn_seed"),
        "seed_cnn_b1": lambda: seed_loop("cnn", store, samples=n(30), batch_size=1),
        "lstm_seed": lambda: bench(lstm, store, samples=n(1152), device=device, name="lstm_seed"),
        "seed_lstm_b1": lambda: seed_loop("lstm", store, samples=n(24), batch_size=1),
        "seed_lstm_b32": lambda: seed_loop("lstm", store, samples=n(192), batch_size=32),
    }
    runs: dict[str, dict] = {}
    for _ in range(rounds):
        for name, measure in measures.items():
            result = measure()
            if name not in runs or result["samples_per_s"] > runs[name]["samples_per_s"]:
                runs[name] = result
    gflops = runs["lstm_seed"]["tokens_per_s"] * LSTM_FLOP_PER_TOKEN / 1e9
    # Our cost per sample follows its real length, the seed's does not (it pads all to the longest), so
    # ours is compared at the split's mean length.
    ours = {k: runs[k]["samples_per_s_at_mean_len"] for k in ("cnn_seed", "lstm_seed")}
    checks = [
        ("cnn_seed / seed CNN b1", ours["cnn_seed"] / runs["seed_cnn_b1"]["samples_per_s"], 50.0),
        ("lstm_seed / seed LSTM b1", ours["lstm_seed"] / runs["seed_lstm_b1"]["samples_per_s"], 6.0),
        ("lstm_seed / seed LSTM b32", ours["lstm_seed"] / runs["seed_lstm_b32"]["samples_per_s"], 1.5),
        ("lstm_seed GFLOP/s / 110", gflops / MACHINE_GFLOPS, 0.5),
    ]
    return {"runs": runs, "lstm_seed_gflops": gflops, "rounds": rounds,
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
    lines.append(f"lstm_seed: {result['lstm_seed_gflops']:.1f} GFLOP/s at 7.8 MFLOP per real token")
    for c in result["checks"]:
        lines.append(f"{c['what']:<28} {c['value']:>7.2f}  target >= {c['target']:<5} "
                     f"{'ok' if c['ok'] else 'MISSED'}")
    load = " ".join(f"{x:.2f}" for x in result["load"])
    lines.append(f"best of {result['rounds']} rounds; threads {result['threads']}, load average {load}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ the GPU table

BIG_BATCH = 512  # a GPU-sized batch: the preset batches leave an H100/H200 waiting on the host
# (label, preset, batch size (None: the preset's, "big": BIG_BATCH), epochs of the train split timed, options)
GPU_RUNS = [
    ("cnn_seed", "cnn_seed", None, 10, {}), ("cnn_seed", "cnn_seed", "big", 20, {}),
    ("cnn_kim", "cnn_kim", None, 10, {}), ("cnn_kim", "cnn_kim", "big", 20, {}),
    ("lstm_seed", "lstm_seed", None, 3, {}), ("lstm_seed", "lstm_seed", "big", 6, {}),
    ("lstm_fixed", "lstm_fixed", None, 3, {}), ("lstm_fixed", "lstm_fixed", "big", 6, {}),
    ("fasttext", "fasttext", None, 10, {}), ("fasttext", "fasttext", "big", 20, {}),
    # The same GPU with the CPU's model route, and without autocast: what each choice is worth.
    ("cnn_seed cpu-route", "cnn_seed", None, 10, {"gpu_style": False}),
    ("lstm_seed fp32", "lstm_seed", None, 3, {"amp": False}),
    ("lstm_seed fp32", "lstm_seed", "big", 6, {"amp": False}),
]
# The seed's loops (seedloop.py) on the same device, fp32 as the seed ran them: (label, arch, batch, samples)
SEED_RUNS = [("seed_cnn_b1", "cnn", 1, 300), ("seed_lstm_b1", "lstm", 1, 60), ("seed_lstm_b32", "lstm", 32, 960)]
GPU_TARGETS = {"cnn_seed": 20_000.0, "lstm_seed": 5_000.0}  # samples/s on one H100/H200 (issue 8)


def check_routes(store: store_mod.Store, device) -> dict:
    """Largest relative difference between the CNN's GPU and CPU routes on one batch, fp32, on ``device``."""
    from study.presets import preset
    cfg = TrainConfig.from_flat(preset("cnn_seed"))
    session = Session(cfg, store, resolve_device(device))
    rows = session.batcher.plan(store.indices("train"), cfg.batch_size, np.random.default_rng(0))[0]
    ids, lengths, labels = session.to_device(rows)
    results = []
    for style in (False, True):
        session.model.gpu_style = style
        session.model.zero_grad()
        logits = session.model(ids, lengths)  # no autocast: compare the routes, not the precisions
        torch.nn.functional.cross_entropy(logits, labels).backward()
        results.append([logits.detach()] + [p.grad.to_dense() for p in session.model.parameters()])
    rel = [float((b - a).norm() / a.norm().clamp(min=1e-30)) for a, b in zip(*results)]
    return {"logits_rel_err": rel[0], "max_grad_rel_err": max(rel[1:])}


def gpu_suite(store: store_mod.Store, *, device=None, scale: float = 1.0, rounds: int = 2,
              big_batch: int = BIG_BATCH) -> dict:
    """Every preset at its batch size and at ``big_batch``, variants, and the seed's loops, on ``device``."""
    from study.presets import preset
    device = resolve_device(device)
    n_train = len(store.indices("train"))
    warmup = 5 if device.type == "cuda" else 1  # CUDA: handles, cuDNN plans and the caching allocator
    measures = {}
    for label, name, batch, epochs, options in GPU_RUNS:
        flat = {**preset(name), **({"batch_size": big_batch if batch == "big" else batch} if batch else {})}
        cfg = TrainConfig.from_flat(flat)
        samples = max(cfg.batch_size, int(epochs * n_train * scale))
        key = f"{label} b{cfg.batch_size}"
        measures[key] = (lambda cfg=cfg, samples=samples, label=label, options=options:
                         bench(cfg, store, samples=samples, warmup=warmup, device=device, name=label, **options))
    for label, arch, batch, samples in SEED_RUNS:
        measures[label] = (lambda arch=arch, batch=batch, samples=samples:
                           seed_loop(arch, store, samples=max(batch, int(samples * scale)), batch_size=batch,
                                     warmup=2, device=device))
    runs: dict[str, dict] = {}
    for _ in range(rounds):  # interleaved rounds, best kept (as in suite())
        for key, measure in measures.items():
            try:
                result = measure()
            except Exception as exc:  # noqa: BLE001 -- one failed figure must not lose the others
                result = {"error": f"{type(exc).__name__}: {exc}", "samples_per_s": float("nan")}
            print(f"  {key}: {result['samples_per_s']:.1f} samples/s {result.get('error', '')}", flush=True)
            if key not in runs or result["samples_per_s"] > runs[key].get("samples_per_s", float("-inf")):
                runs[key] = result
    try:
        routes = check_routes(store, device)
    except Exception as exc:  # noqa: BLE001
        routes = {"error": f"{type(exc).__name__}: {exc}"}

    def rate(key: str) -> float:
        r = runs.get(key, {})
        return r.get("samples_per_s_at_mean_len", r.get("samples_per_s", float("nan")))

    ratios, checks = [], []
    for batch_key in ("b64", f"b{big_batch}"):  # b64: cnn_seed's and lstm_seed's preset batch size
        ratios += [(f"cnn_seed {batch_key} / seed CNN b1", rate(f"cnn_seed {batch_key}") / rate("seed_cnn_b1")),
                   (f"lstm_seed {batch_key} / seed LSTM b1", rate(f"lstm_seed {batch_key}") / rate("seed_lstm_b1")),
                   (f"lstm_seed {batch_key} / seed LSTM b32", rate(f"lstm_seed {batch_key}") / rate("seed_lstm_b32"))]
        for name, target in GPU_TARGETS.items():
            value = runs.get(f"{name} {batch_key}", {}).get("samples_per_s", float("nan"))
            checks.append({"what": f"{name} {batch_key} samples/s", "value": value, "target": target,
                           "ok": value >= target})
    info = {"torch": torch.__version__, "device": str(device), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "train_rows": n_train, "train_mean_len": float(np.mean(store.lengths[store.indices("train")])),
            "rounds": rounds, "scale": scale, "big_batch": big_batch}
    return {"info": info, "runs": runs, "routes": routes, "lstm_seed_gflops": {
                k: r["tokens_per_s"] * LSTM_FLOP_PER_TOKEN / 1e9 for k, r in runs.items()
                if k.startswith("lstm_seed") and "tokens_per_s" in r},
            "ratios": [{"what": w, "value": v} for w, v in ratios], "checks": checks}


def format_gpu_suite(result: dict) -> str:
    info = result["info"]
    lines = [f"{info['gpu'] or info['device']}  torch {info['torch']}  CUDA {info['cuda']}  cuDNN {info['cudnn']}"
             f"  store: {info['train_rows']} train rows, mean length {info['train_mean_len']:.0f}",
             f"{'run':<26} {'amp':>8} {'samples/s':>10} {'at mean len':>11} {'tokens/s':>11} {'peak MB':>8} "
             f"{'steps':>5}"]
    for key, r in result["runs"].items():
        if "error" in r:
            lines.append(f"{key:<26} ERROR {r['error'][:200]}")
            continue
        peak = r.get("peak_gpu_mb")
        lines.append(f"{key:<26} {r.get('amp', 'fp32'):>8} {r['samples_per_s']:>10.0f} "
                     f"{r.get('samples_per_s_at_mean_len', r['samples_per_s']):>11.0f} {r['tokens_per_s']:>11.0f} "
                     f"{'-' if peak is None else f'{peak:.0f}':>8} {r.get('steps', r['samples'] // r['batch_size']):>5}")
    for key, g in result["lstm_seed_gflops"].items():
        lines.append(f"{key}: {g / 1000:.2f} TFLOP/s at 7.8 MFLOP per real token")
    for r in result["ratios"]:
        lines.append(f"{r['what']:<34} {r['value']:>9.1f}x  (at the train split's mean length)")
    for c in result["checks"]:
        lines.append(f"{c['what']:<34} {c['value']:>9.0f}   target >= {c['target']:.0f}  "
                     f"{'ok' if c['ok'] else 'MISSED'}")
    lines.append(f"CNN GPU vs CPU route on this device (fp32): {json.dumps(result['routes'])}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ CLI: study bench

def add_arguments(parser) -> None:
    parser.add_argument("--store", required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--preset")
    what.add_argument("--seed-loop", choices=("cnn", "lstm"), help="time the seed's own loop")
    what.add_argument("--suite", action="store_true", help="all targets of docs/benchmarks.md, with ratios")
    what.add_argument("--gpu-suite", action="store_true", help="the GPU table: presets, big batches, seed loops")
    parser.add_argument("--samples", type=int, help="timed samples (after warm-up)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--layers", type=int, default=2, help="--seed-loop lstm: number of layers")
    parser.add_argument("--device")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--quick", action="store_true", help="--suite with a quarter of the samples")
    parser.add_argument("--rounds", type=int, help="--suite/--gpu-suite: interleaved rounds, best kept "
                        "(default 3 / 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="--gpu-suite: x the timed samples")
    parser.add_argument("--big-batch", type=int, default=BIG_BATCH, help="--gpu-suite: the large batch size")
    parser.add_argument("--out", help="--gpu-suite: also write gpu_bench.txt and gpu_bench.json here")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line (last)")


def main(args) -> int:
    from study.presets import resolve_config
    try:
        if args.samples is not None and args.samples < 1:
            raise ValueError("--samples must be >= 1")
        if args.scale <= 0 or (args.rounds is not None and args.rounds < 1):
            raise ValueError("--scale must be > 0 and --rounds >= 1")
        cfg = None
        if args.preset:
            sets = args.set + ([f"batch_size={args.batch_size}"] if args.batch_size else [])
            cfg = resolve_config(preset_name=args.preset, sets=sets)
        store = store_mod.load(args.store)
    except (ValueError, store_mod.StoreError) as exc:
        raise UsageError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.suite:
        result = suite(store, threads=args.threads, device=args.device, scale=0.25 if args.quick else 1.0,
                       rounds=args.rounds or 3)
        print(format_suite(result), flush=True)
    elif args.gpu_suite:
        result = gpu_suite(store, device=args.device, scale=args.scale, rounds=args.rounds or 2,
                           big_batch=args.big_batch)
        table = format_gpu_suite(result)
        print(table, flush=True)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "gpu_bench.txt").write_text(table + "\n")
            (out / "gpu_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    elif args.seed_loop:
        result = seed_loop(args.seed_loop, store, samples=args.samples or 16, batch_size=args.batch_size or 1,
                           layers=args.layers, device=resolve_device(args.device or "cpu"))
    else:
        result = bench(cfg, store, samples=args.samples or 1024, device=args.device, threads=args.threads,
                       name=args.preset)
    if args.json or not (args.suite or args.gpu_suite):
        print(json.dumps(result), flush=True)
    return 0
