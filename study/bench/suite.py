"""The CPU benchmark suite: every speed target of docs/benchmarks.md measured in one run, with ratios.

    python -m study bench --store S --suite [--quick] [--rounds 2] [--json]
    scripts/bench_cpu.sh S --threads 2          # the same, with `uptime` before and after

Rows (all whole training steps on the same store, same process):
- ``matmul``: this machine's fp32 matrix-product rate (flops.py), measured at the start of every round;
- the CNN at the configurations the cnn search space samples: widths 3,4,5 x 64/128/256 filters x 1 and 2
  conv layers x frozen and fine-tuned embeddings; ``cnn_kim`` and the plain ``nn.Conv1d`` Kim CNN loop
  (user_loops.py) it is compared with;
- ``lstm_original`` (2x256) and small LSTMs (hidden 32 and 64, the search space's low end);
- ``fasttext`` (unigrams), ``fasttext_bigrams`` and the ``nn.EmbeddingBag`` tutorial loop;
- ``cnn_original`` and the original study's CNN and LSTM loops (original_loops.py).

Other jobs on a shared machine come and go within seconds, so each row is measured in ``rounds`` short
rounds interleaved with the others and its best round is kept (best-of-N timing), the matmul rate too.
A FLOP rate is the config's FLOPs (flops.py) per second; "of matmul" divides it by the best matmul rate
(the checks use this one); "(CPU-s)" divides FLOPs per CPU-second of the process by the matmul's FLOPs
per CPU-second, which moves less when other jobs crowd the cores.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from data_prep import store as store_mod
from study.bench.flops import matmul_rate
from study.bench.original_loops import original_loop
from study.bench.throughput import bench
from study.bench.user_loops import embedding_bag_loop, kim_conv1d_loop
from study.train.config import TrainConfig
from study.train.presets import preset

CNN_FILTERS = (64, 128, 256)


def cnn_grid() -> dict[str, dict]:
    """Row name -> flat config of the CNN rows: cnn_kim's widths and layout, the search space's ranges."""
    rows = {}
    for filters in CNN_FILTERS:
        for layers in (1, 2):
            for frozen in (True, False):
                name = f"cnn f{filters} x{layers} {'frozen' if frozen else 'tuned'}"
                rows[name] = {**preset("cnn_kim"), "filters": filters, "conv_layers": layers,
                              "freeze_embeddings": frozen}
    return rows


def small_lstms() -> dict[str, dict]:
    base = {**preset("lstm_fixed"), "batch_size": 32}
    return {"lstm h32 x1": {**base, "hidden_size": 32, "num_layers": 1},
            "lstm h64 x1": {**base, "hidden_size": 64, "num_layers": 1},
            "lstm h64 x2": {**base, "hidden_size": 64, "num_layers": 2}}


def _rows(store: store_mod.Store, n: Callable[[int], int], device) -> dict[str, Callable[[], dict]]:
    def ours(flat: dict, samples: int, name: str) -> Callable[[], dict]:
        cfg = TrainConfig.from_flat(flat)
        return lambda: bench(cfg, store, samples=n(samples), device=device, name=name)

    rows = {name: ours(flat, 256 if flat["filters"] <= 128 else 128, name) for name, flat in cnn_grid().items()}
    rows["cnn_kim"] = ours(preset("cnn_kim"), 256, "cnn_kim")
    rows["kim_conv1d_loop"] = lambda: kim_conv1d_loop(store, samples=n(100), batch_size=50)
    rows["lstm_original"] = ours(preset("lstm_original"), 384, "lstm_original")
    rows.update({name: ours(flat, 1024, name) for name, flat in small_lstms().items()})
    rows["fasttext"] = ours(preset("fasttext"), 8192, "fasttext")
    rows["fasttext_bigrams"] = ours(preset("fasttext_bigrams"), 8192, "fasttext_bigrams")
    rows["embedding_bag_loop"] = lambda: embedding_bag_loop(store, samples=n(8192), batch_size=32)
    rows["cnn_original"] = ours(preset("cnn_original"), 4096, "cnn_original")
    rows["original_cnn_b1"] = lambda: original_loop("cnn", store, samples=n(30), batch_size=1)
    rows["original_lstm_b1"] = lambda: original_loop("lstm", store, samples=n(24), batch_size=1)
    rows["original_lstm_b32"] = lambda: original_loop("lstm", store, samples=n(192), batch_size=32)
    return rows


def _speed(run: dict, mean_len: float) -> float:
    """Samples/s at the train split's mean review length: a short run draws batches of random lengths."""
    return run["tokens_per_s"] / mean_len


def _checks(runs: dict, matmul: float, mean_len: float) -> list[dict]:
    speed = {name: _speed(r, mean_len) for name, r in runs.items()}
    original = {k: runs[k]["samples_per_s"] for k in runs if k.startswith("original_")}  # pads to the longest
    checks = [(f"{name} of matmul", runs[name]["model_gflops"] / matmul, ">=", 0.6) for name in cnn_grid()]
    checks += [
        ("cnn_kim / kim_conv1d_loop", speed["cnn_kim"] / speed["kim_conv1d_loop"], ">=", 3.0),
        ("lstm_original of matmul", runs["lstm_original"]["model_gflops"] / matmul, ">=", 0.7),
        ("fasttext_bigrams cost / fasttext", speed["fasttext"] / speed["fasttext_bigrams"], "<=", 1.5),
        ("fasttext / embedding_bag_loop", speed["fasttext"] / speed["embedding_bag_loop"], ">=", 1.0),
        ("cnn_original / original CNN b1", speed["cnn_original"] / original["original_cnn_b1"], ">=", 50.0),
        ("lstm_original / original LSTM b1", speed["lstm_original"] / original["original_lstm_b1"], ">=", 6.0),
        ("lstm_original / original LSTM b32", speed["lstm_original"] / original["original_lstm_b32"], ">=", 1.5),
    ]
    return [{"what": w, "value": v, "op": op, "target": t, "ok": v >= t if op == ">=" else v <= t}
            for w, v, op, t in checks]


def suite(store: store_mod.Store, *, threads: int | None = None, device=None, scale: float = 1.0,
          rounds: int = 3, only: Callable[[str], bool] | None = None) -> dict:
    """Every row (``scale`` x its samples, split over ``rounds`` interleaved rounds, best kept) and the
    checks. ``only`` keeps a subset of the rows (tests); checks then need every row and are skipped."""
    if threads:
        torch.set_num_threads(int(threads))
    n = lambda k: max(1, int(k * scale / rounds))  # noqa: E731
    rows = {k: v for k, v in _rows(store, n, device).items() if only is None or only(k)}
    runs: dict[str, dict] = {}
    matmul: list[dict] = []
    for _ in range(rounds):
        matmul.append(matmul_rate())
        for name, measure in rows.items():
            result = measure()
            if name not in runs or result["samples_per_s"] > runs[name]["samples_per_s"]:
                runs[name] = result
    mean_len = float(store.lengths[store.indices("train")].mean())
    best = max(m["gflops"] for m in matmul)
    return {"runs": runs, "matmul_gflops": best, "matmul_rounds": [m["gflops"] for m in matmul],
            "matmul_gflop_per_cpu_s": max(m["gflop_per_cpu_s"] for m in matmul), "rounds": rounds,
            "mean_len": mean_len, "dim": int(store.embeddings.shape[1]),
            "checks": _checks(runs, best, mean_len) if only is None else [],
            "threads": torch.get_num_threads(), "load": os.getloadavg()}


def format_suite(result: dict) -> str:
    mean_len, matmul, per_cpu = result["mean_len"], result["matmul_gflops"], result["matmul_gflop_per_cpu_s"]
    spread = ", ".join(f"{x:.0f}" for x in result["matmul_rounds"])
    lines = [f"matmul (fp32, 1024^2, {result['threads']} threads): {matmul:.1f} GFLOP/s, best of rounds [{spread}]; "
             f"{per_cpu:.1f} GFLOP per CPU-second",
             f"store: {result['dim']}-d embeddings, train mean length {mean_len:.0f}",
             f"{'run':<22} {'samples/s':>10} {'at mean len':>11} {'tokens/s':>9} {'batch':>5} {'len':>4} "
             f"{'MFLOP/tok':>9} {'GFLOP/s':>8} {'of matmul':>9} {'(CPU-s)':>8}"]
    for name, r in result["runs"].items():
        flop = r.get("model_gflops")
        rate = (f"{r['mflop_per_token']:>9.2f} {flop:>8.1f} {flop / matmul:>9.0%} "
                f"{r['model_gflop_per_cpu_s'] / per_cpu:>8.0%}") if flop is not None else f"{'-':>9} {'-':>8} {'-':>9} {'-':>8}"
        lines.append(f"{name:<22} {r['samples_per_s']:>10.1f} {_speed(r, mean_len):>11.1f} {r['tokens_per_s']:>9.0f} "
                     f"{r['batch_size']:>5} {r['seq_len_mean']:>4.0f} {rate}")
    for c in result["checks"]:
        lines.append(f"{c['what']:<36} {c['value']:>7.2f}  target {c['op']} {c['target']:<5} "
                     f"{'ok' if c['ok'] else 'MISSED'}")
    load = " ".join(f"{x:.2f}" for x in result["load"])
    lines.append(f"best of {result['rounds']} rounds; threads {result['threads']}, load average {load}")
    return "\n".join(lines)
