"""Why does the original study's LSTM predict one class? Train it, probe it, change one factor at a time, name the cause.

    python -m study diagnose --store /tmp/imdb5k --out /tmp/diag5k              # ~10 min on 2 CPU cores
    python -m study diagnose --store /tmp/imdb5k --out /tmp/d --budget-minutes 4 --epochs 2
    python -m study diagnose --store S --out /tmp/d --smoke                       # tiny, seconds

Writes ``OUT/diagnosis.json`` (for tools) and ``OUT/diagnosis.md`` (for people):

1. Baseline ``lstm_original``: the original study's LSTM recipe at a small size (default 1 layer x 64; the failure does not
   depend on size): every review post-padded to the longest (``max_len``), the output read at the last
   padded step, softmax before CrossEntropyLoss, Adam 1e-3, batches of 16 shuffled every epoch (the original study's
   ``train_test_split`` shuffled its rows too). Unlike the original study, the embedding is updated sparsely.
2. Probes on the trained baseline (probes.py): predicted-class histogram and entropy, logit spread across
   inputs, pad steps before the readout, gradient reaching the first / last real / pad steps, loss vs ln(K).
3. Ablations, each changing ONE factor of the baseline, then the verdict (``verdict``, a pure function).
4. The author's question: the fixed LSTM against the original study's CNN and a fastText mean, same data and epochs.

The budget is split by measuring the baseline's step time first: it sets the epochs (2 to 4) and, if even
2 epochs per run do not fit, a training subsample; runs that no longer fit are skipped and listed.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from data_prep import store as store_mod
from study.diagnosis import probes
from study.diagnosis.plan import (ABLATIONS, COMPARISONS, CORE, MAX_EPOCHS, MIN_EPOCHS, NOT_APPLICABLE,
                                  baseline_flat, derive, measure_epoch_s, plan_epochs, subsample)
from study.diagnosis.render import compare, render
from study.diagnosis.verdict import RECOVER_GAIN, RECOVER_SHARE, verdict
from study.errors import reported_as_usage
from study.train import metrics
from study.train.config import TrainConfig
from study.train.trainer import Session, evaluate, train


def _log(msg: str) -> None:
    print(f"[diagnose] {msg}", file=sys.stderr, flush=True)


def run(flat: dict, store: store_mod.Store, threads: int | None, keep_state: bool = False):
    """Train one config; returns (history, final state or None, wall seconds)."""
    cfg = TrainConfig.from_flat(flat)
    final = {}

    def on_epoch(metrics, get_state):
        if keep_state and metrics["epoch"] == cfg.epochs:
            final["state"] = get_state()

    t0 = time.perf_counter()
    history = train(cfg, store, device="cpu", threads=threads, on_epoch=on_epoch,
                    log=lambda line: _log(f"  {line}"))
    return history, final.get("state"), time.perf_counter() - t0


def row(name: str, history: list[dict], wall_s: float, **extra) -> dict:
    last = history[-1]
    return {"change": name, **extra, "test_acc": last["test_acc"], "majority_share": last["majority_share"],
            "macro_f1": last["macro_f1"], "val_acc": last["val_acc"], "pred_hist": last["pred_hist"],
            "train_loss": last["train_loss"], "train_time_s": round(last["train_time_s"], 1),
            "wall_s": round(wall_s, 1), "epochs": last["epoch"], "samples_per_s": round(last["samples_per_s"], 1),
            "params_no_embedding": last["params_no_embedding"]}


def probe_baseline(flat: dict, store: store_mod.Store, state: dict, history: list[dict]) -> dict:
    cfg = TrainConfig.from_flat(flat)
    session = Session(cfg, store, torch.device("cpu"))
    session.load_state(state)
    test = store.indices("test")
    ev = evaluate(session, test)
    logits, labels = ev.logits, ev.labels
    grad_rows = test[np.random.default_rng(cfg.seed).permutation(len(test))[:64]]
    return {"prediction_histogram": probes.prediction_histogram(logits.argmax(axis=1), store.num_classes),
            "logit_spread": probes.logit_spread(logits, labels),
            "readout_padding": probes.readout_padding(session, test),
            "gradient_by_position": probes.gradient_by_position(session, grad_rows),
            "loss_curve": probes.loss_curve(history, store.num_classes, softmax_loss=cfg.softmax_before_loss)}


def add_arguments(parser) -> None:
    parser.add_argument("--store", required=True, help="store folder or URI")
    parser.add_argument("--out", required=True, help="folder for diagnosis.md and diagnosis.json")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="wall-clock budget for all runs")
    parser.add_argument("--epochs", type=int,
                        help=f"epochs per run (default: what fits the budget, {MIN_EPOCHS}..{MAX_EPOCHS})")
    parser.add_argument("--hidden-size", type=int, default=64, help="LSTM hidden size (1 layer)")
    parser.add_argument("--max-len", type=int, default=400, help="tokens kept per review = the padded width")
    parser.add_argument("--batch-size", type=int, default=16, help="the original study used 1; 16 fits the budget")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: a few hundred rows, 1 epoch")


def _inputs(args):
    """The store and output folder, validated; bad input becomes a one-line usage error."""
    with reported_as_usage(ValueError, store_mod.StoreError, OSError):
        if args.budget_minutes <= 0 or (args.epochs is not None and args.epochs < 1):
            raise ValueError("--budget-minutes and --epochs must be positive")
        store = store_mod.load(args.store)
        if store.num_classes < 2 or min(len(store.indices(s)) for s in ("train", "test")) == 0:
            raise ValueError(f"store {args.store} needs at least 2 classes and train and test rows")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        TrainConfig.from_flat(baseline_flat(args.hidden_size, args.max_len, 1, args.batch_size, args.seed))
    return store, out


def main(args) -> int:
    started = time.perf_counter()
    full_store, out = _inputs(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget_s = args.budget_minutes * 60
    store, fraction = full_store, 1.0
    hidden, max_len = args.hidden_size, args.max_len
    if args.smoke:
        hidden, max_len = min(hidden, 16), min(max_len, 100)
        fraction = min(1.0, 300 / len(store.indices("train")))
        store = subsample(store, fraction, args.seed, test_cap=200)
    base = baseline_flat(hidden, max_len, args.epochs or 1, args.batch_size, args.seed)
    _log(f"store {args.store}: {len(full_store.labels):,} rows, {store.num_classes} classes; budget "
         f"{budget_s / 60:.1f} min; measuring the baseline's step time")
    epoch_s = measure_epoch_s(TrainConfig.from_flat(base), store)
    if args.smoke or args.epochs:
        epochs = 1 if args.smoke else args.epochs
    else:
        epochs, fraction = plan_epochs(budget_s, epoch_s)
        if fraction < 1.0:
            store = subsample(full_store, fraction, args.seed)
            epoch_s *= fraction
    base["epochs"] = epochs
    _log(f"~{epoch_s:.0f} s per baseline epoch: {epochs} epoch(s) per run on {fraction:.0%} of the training rows")
    report = _run_all(args, base, store, epochs, started, budget_s)
    report["settings"] = {
        "store": args.store, "store_hash": store.content_hash, "num_classes": store.num_classes,
        "rows": {s: int(len(store.indices(s))) for s in store_mod.SPLITS},
        "store_rows": int(len(full_store.labels)), "train_fraction": round(fraction, 3),
        "vector_size": store.embedding_dim, "hidden_size": hidden, "num_layers": 1, "epochs": epochs,
        "max_len": max_len, "batch_size": args.batch_size, "seed": args.seed, "smoke": args.smoke,
        "threads": torch.get_num_threads(), "budget_s": budget_s,
        "elapsed_s": round(time.perf_counter() - started, 1), "baseline_config": base}
    (out / "diagnosis.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "diagnosis.md").write_text(render(report))
    _log(f"collapsed={report['collapsed']}; {report['root_cause']}")
    _log(f"wrote {out / 'diagnosis.md'} and {out / 'diagnosis.json'} in {report['settings']['elapsed_s']:.0f} s")
    return 0


def _run_all(args, base: dict, store, epochs: int, started: float, budget_s: float) -> dict:
    """Baseline, probes, ablations and comparisons within the budget; the result dict without settings."""
    def left() -> float:
        return budget_s - (time.perf_counter() - started)

    _log("baseline lstm_original (post-padding, last-step readout, softmax before the loss)")
    history, state, wall = run(base, store, args.threads, keep_state=True)
    chance = metrics.chance(store.num_classes)
    _log("probing the baseline")
    evidence = probe_baseline(base, store, state, history)
    del state
    epoch_s = wall / epochs  # measured now, for the estimates below
    baseline = {"name": "lstm_original", **row("baseline", history, wall),
                "pred_entropy_bits": evidence["prediction_histogram"]["pred_entropy_bits"],
                "loss_vs_ln_k": evidence["loss_curve"]["loss_vs_ln_k"]}
    baseline.pop("change")

    def maybe_run(name, changes, cost, **extra) -> dict:
        estimate = cost * epoch_s * epochs
        entry = {"change": name, **extra, "keys": changes}
        if estimate > left() and not args.smoke:
            _log(f"skip {name}: needs ~{estimate:.0f} s, {max(left(), 0):.0f} s left")
            return {**entry, "test_acc": None, "skipped": f"out of budget (needs ~{estimate:.0f} s)"}
        _log(f"{name} ({max(left(), 0):.0f} s of budget left)")
        hist, _, wall_s = run(derive(base, changes), store, args.threads)
        return {**row(name, hist, wall_s, **extra), "keys": changes}

    ablations = [maybe_run(name, changes, cost, factor=factor) for name, factor, changes, cost in ABLATIONS[:CORE]]
    comparisons = [maybe_run(name, changes, cost, recipe=recipe) for name, recipe, changes, cost in COMPARISONS]
    ablations += [maybe_run(name, changes, cost, factor=factor) for name, factor, changes, cost in ABLATIONS[CORE:]]
    ablations += [{"change": name, "factor": name, "test_acc": None, "skipped": why} for name, why in NOT_APPLICABLE]
    result = verdict(chance, baseline, ablations, evidence)
    return {"chance": chance, "baseline": baseline, "collapsed": result["collapsed"],
            "at_chance": result["at_chance"], "root_cause": result["root_cause"],
            "recovered": result["recovered"], "factors": result["factors"], "evidence": evidence,
            "ablations": ablations, "comparison": compare(comparisons, ablations),
            "thresholds": {"collapse_share": metrics.COLLAPSE_SHARE, "collapse_margin": metrics.COLLAPSE_MARGIN,
                           "recover_gain": RECOVER_GAIN, "recover_share": RECOVER_SHARE}}
