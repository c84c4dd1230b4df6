"""``python -m study bench``: one preset's throughput, the CPU suite, the GPU table, or an original loop."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from data_prep import store as store_mod
from study.bench.gpu import BIG_BATCH, format_gpu_suite, gpu_suite
from study.bench.original_loops import original_loop
from study.bench.flops import matmul_rate
from study.bench.suite import format_suite, suite
from study.bench.throughput import bench
from study.errors import reported_as_usage
from study.train.trainer import resolve_device


def add_arguments(parser) -> None:
    parser.add_argument("--store", required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--preset")
    what.add_argument("--original-loop", "--seed-loop", dest="original_loop", choices=("cnn", "lstm"),
                      help="time the original study's own loop")
    what.add_argument("--suite", action="store_true", help="all targets of docs/benchmarks.md, with ratios")
    what.add_argument("--gpu-suite", action="store_true", help="the GPU table: presets, big batches, original loops")
    parser.add_argument("--samples", type=int, help="timed samples (after warm-up)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--layers", type=int, default=2, help="--original-loop lstm: number of layers")
    parser.add_argument("--device")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--quick", action="store_true", help="--suite with a quarter of the samples")
    parser.add_argument("--rounds", type=int, help="--suite/--gpu-suite: interleaved rounds, best kept "
                        "(default 3 / 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="--gpu-suite: x the timed samples")
    parser.add_argument("--big-batch", type=int, default=BIG_BATCH, help="--gpu-suite: the large batch size")
    parser.add_argument("--out", help="--gpu-suite: also write gpu_bench.txt and gpu_bench.json here")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line (last)")
    parser.add_argument("--plain-route", action="store_true", help="--preset: time the models' plain route "
                        "(the one CUDA takes: Conv1d layers, a lookup per position) on this device, to compare")
    parser.add_argument("--profile", type=int, metavar="N", help="--preset: also print the N operators that took "
                        "the most CPU time (torch.profiler, warm-up steps included)")


@contextlib.contextmanager
def _profiled(rows: int | None):
    """Print the top ``rows`` operators by self CPU time of what runs inside (nothing when None)."""
    if not rows:
        yield
        return
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        yield
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows), flush=True)


def main(args) -> int:
    from study.train.presets import resolve_config
    with reported_as_usage(ValueError, store_mod.StoreError):
        if args.samples is not None and args.samples < 1:
            raise ValueError("--samples must be >= 1")
        if args.scale <= 0 or (args.rounds is not None and args.rounds < 1):
            raise ValueError("--scale must be > 0 and --rounds >= 1")
        cfg = None
        if args.preset:
            sets = args.set + ([f"batch_size={args.batch_size}"] if args.batch_size else [])
            cfg = resolve_config(preset_name=args.preset, sets=sets)
        store = store_mod.load(args.store)
    if args.threads:
        torch.set_num_threads(args.threads)
    before = matmul_rate()["gflops"] if args.preset and (args.device or "cpu") == "cpu" else 0.0
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
    elif args.original_loop:
        result = original_loop(args.original_loop, store, samples=args.samples or 16, batch_size=args.batch_size or 1,
                           layers=args.layers, device=resolve_device(args.device or "cpu"))
    else:
        with _profiled(args.profile):
            result = bench(cfg, store, samples=args.samples or 1024, device=args.device, threads=args.threads,
                           name=args.preset, gpu_style=True if args.plain_route else None)
        if result["device"] == "cpu":
            # The machine's rate now, in this process: the best of before and after the timed steps.
            rate = max(before, matmul_rate()["gflops"])
            result.update(matmul_gflops=rate, of_matmul=result["model_gflops"] / rate)
    if args.json or not (args.suite or args.gpu_suite):
        print(json.dumps(result), flush=True)
    return 0
