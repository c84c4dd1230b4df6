"""The GPU table: every preset at its own batch size and at a GPU-sized one, on one device.

    python -m study bench --store S --gpu-suite --device cuda --out DIR      # what scripts/gpu_bench.sh runs

Also times the original study's loops on the same GPU and checks that the CNN's GPU and CPU routes agree.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from data_prep import store as store_mod
from study.bench.original_loops import original_loop
from study.bench.throughput import bench
from study.train.config import TrainConfig
from study.train.trainer import Session, resolve_device

BIG_BATCH = 512  # a GPU-sized batch: the preset batches leave an H100/H200 waiting on the host
# (label, preset, batch size (None: the preset's, "big": BIG_BATCH), epochs of the train split timed, options)
GPU_RUNS = [
    ("cnn_original", "cnn_original", None, 10, {}), ("cnn_original", "cnn_original", "big", 20, {}),
    ("cnn_kim", "cnn_kim", None, 10, {}), ("cnn_kim", "cnn_kim", "big", 20, {}),
    ("lstm_original", "lstm_original", None, 3, {}), ("lstm_original", "lstm_original", "big", 6, {}),
    ("lstm_fixed", "lstm_fixed", None, 3, {}), ("lstm_fixed", "lstm_fixed", "big", 6, {}),
    ("fasttext", "fasttext", None, 10, {}), ("fasttext", "fasttext", "big", 20, {}),
    # The same GPU with the CPU's model route, and without autocast: what each choice is worth.
    ("cnn_original cpu-route", "cnn_original", None, 10, {"gpu_style": False}),
    ("lstm_original fp32", "lstm_original", None, 3, {"amp": False}),
    ("lstm_original fp32", "lstm_original", "big", 6, {"amp": False}),
]
# The original study's loops (original_loops.py) on the same device, fp32 as the original study ran them: (label, arch, batch, samples)
ORIGINAL_RUNS = [("original_cnn_b1", "cnn", 1, 300), ("original_lstm_b1", "lstm", 1, 60), ("original_lstm_b32", "lstm", 32, 960)]
GPU_TARGETS = {"cnn_original": 20_000.0, "lstm_original": 5_000.0}  # samples/s on one H100/H200: the GPU route's targets


def check_routes(store: store_mod.Store, device) -> dict:
    """Largest relative difference between the CNN's GPU and CPU routes on one batch, fp32, on ``device``."""
    from study.train.presets import preset
    cfg = TrainConfig.from_flat(preset("cnn_original"))
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
    """Every preset at its batch size and at ``big_batch``, variants, and the original study's loops, on ``device``."""
    from study.train.presets import preset
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
    for label, arch, batch, samples in ORIGINAL_RUNS:
        measures[label] = (lambda arch=arch, batch=batch, samples=samples:
                           original_loop(arch, store, samples=max(batch, int(samples * scale)), batch_size=batch,
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
    for batch_key in ("b64", f"b{big_batch}"):  # b64: cnn_original's and lstm_original's preset batch size
        ratios += [(f"cnn_original {batch_key} / original CNN b1", rate(f"cnn_original {batch_key}") / rate("original_cnn_b1")),
                   (f"lstm_original {batch_key} / original LSTM b1", rate(f"lstm_original {batch_key}") / rate("original_lstm_b1")),
                   (f"lstm_original {batch_key} / original LSTM b32", rate(f"lstm_original {batch_key}") / rate("original_lstm_b32"))]
        for name, target in GPU_TARGETS.items():
            value = runs.get(f"{name} {batch_key}", {}).get("samples_per_s", float("nan"))
            checks.append({"what": f"{name} {batch_key} samples/s", "value": value, "target": target,
                           "ok": value >= target})
    info = {"torch": torch.__version__, "device": str(device), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "train_rows": n_train, "train_mean_len": float(np.mean(store.lengths[store.indices("train")])),
            "rounds": rounds, "scale": scale, "big_batch": big_batch}
    return {"info": info, "runs": runs, "routes": routes, "lstm_original_gflops": {
                k: r["model_gflops"] for k, r in runs.items()
                if k.startswith("lstm_original") and "model_gflops" in r},
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
    for key, g in result["lstm_original_gflops"].items():
        lines.append(f"{key}: {g / 1000:.2f} TFLOP/s (the config's FLOPs, study/bench/flops.py)")
    for r in result["ratios"]:
        lines.append(f"{r['what']:<34} {r['value']:>9.1f}x  (at the train split's mean length)")
    for c in result["checks"]:
        lines.append(f"{c['what']:<34} {c['value']:>9.0f}   target >= {c['target']:.0f}  "
                     f"{'ok' if c['ok'] else 'MISSED'}")
    lines.append(f"CNN GPU vs CPU route on this device (fp32): {json.dumps(result['routes'])}")
    return "\n".join(lines)
