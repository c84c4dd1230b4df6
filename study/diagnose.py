"""Why does the seed's LSTM predict one class? Train it, probe it, change one factor at a time, name the cause.

    python -m study diagnose --store /tmp/imdb5k --out /tmp/diag5k              # ~10 min on 2 CPU cores
    python -m study diagnose --store /tmp/imdb5k --out /tmp/d --budget-minutes 4 --epochs 2
    python -m study diagnose --store S --out /tmp/d --smoke                       # tiny, seconds

Writes ``OUT/diagnosis.json`` (for tools) and ``OUT/diagnosis.md`` (for people):

1. Baseline ``lstm_seed``: the seed's LSTM recipe at a small size (default 1 layer x 64; the failure does not
   depend on size): every review post-padded to the longest (``max_len``), the output read at the last
   padded step, softmax before CrossEntropyLoss, Adam 1e-3, batches of 16 shuffled every epoch (the seed's
   ``train_test_split`` shuffled its rows too). Unlike the seed, the embedding is updated sparsely.
2. Probes on the trained baseline (probes.py): predicted-class histogram and entropy, logit spread across
   inputs, pad steps before the readout, gradient reaching the first / last real / pad steps, loss vs ln(K).
3. Ablations, each changing ONE factor of the baseline, then the verdict (``verdict``, a pure function).
4. The author's question: the fixed LSTM against the seed's CNN and a fastText mean, same data and epochs.

The budget is split by measuring the baseline's step time first: it sets the epochs (2 to 4) and, if even
2 epochs per run do not fit, a training subsample; runs that no longer fit are skipped and listed.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from data_prep import store as store_mod
from study import probes
from study.config import TrainConfig, UsageError
from study.trainer import Session, train

# Thresholds of the verdict (stated in diagnosis.md). Collapsed = the rule of `study report`.
COLLAPSE_SHARE, COLLAPSE_MARGIN = 0.9, 0.05
RECOVER_GAIN, RECOVER_SHARE = 0.15, 0.8  # recovered: acc >= chance + 0.15 and majority share < 0.8
PADDING = "padding/readout"
MIN_EPOCHS, MAX_EPOCHS = 2, 4  # one epoch is too little for the collapse (and the fixes) to show

# (change, factor, flat keys changed, cost of an epoch relative to the baseline's). Order = priority.
ABLATIONS = [
    ("readout at the true length (final_state)", PADDING, {"readout": "final_state"}, 1.0),
    ("pre-padding", PADDING, {"padding": "pre"}, 1.0),
    ("max pooling over time", PADDING, {"readout": "max"}, 1.0),
    ("no softmax before the loss", "softmax before the loss", {"softmax_loss": False}, 1.0),
    ("gradient clipping (norm 1.0)", "optimisation", {"grad_clip": 1.0}, 1.0),
    ("lower learning rate (1e-4)", "optimisation", {"lr": 1e-4}, 1.0),
    ("frozen embeddings", "embedding fine-tuning", {"freeze_embeddings": True}, 0.8),
    ("pad each batch to its own longest (length-bucketed)", PADDING, {"pad_to_longest": False}, 0.6),
]
CORE = 4  # the first CORE ablations run before the comparisons and size the epochs
NOT_APPLICABLE = [("shuffling", "the baseline already reshuffles the training rows every epoch (the seed's "
                   "train_test_split shuffled them too), so there is no unshuffled order to fix")]
# The author's question, asked on the same data with the same epochs.
COMPARISONS = [
    ("lstm_fixed", "LSTM, all fixes: true-length readout, raw logits, length-bucketed batches, clip 1.0",
     {"readout": "final_state", "softmax_loss": False, "pad_to_longest": False, "grad_clip": 1.0}, 0.6),
    ("cnn_seed", "the seed's CNN architecture (widths 1,2,3,5 x 10 filters, tanh), fixed training",
     {"arch": "cnn", "widths": "1,2,3,5", "filters": 10, "activation": "tanh", "dropout": 0.0, "conv_layers": 1,
      "softmax_loss": False, "pad_to_longest": False}, 0.3),
    ("fasttext", "fastText-style mean of the word embeddings, then linear",
     {"arch": "fasttext", "bigram_buckets": 0, "dropout": 0.0, "lr": 5e-3, "softmax_loss": False,
      "pad_to_longest": False}, 0.1),
]
LSTM_ONLY = ("hidden_size", "num_layers", "bidirectional", "readout", "dropout")


def _log(msg: str) -> None:
    print(f"[diagnose] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ verdict

def is_collapsed(test_acc: float, majority_share: float, chance: float) -> bool:
    return majority_share >= COLLAPSE_SHARE and abs(test_acc - chance) <= COLLAPSE_MARGIN


def is_recovered(test_acc: float, majority_share: float, chance: float) -> bool:
    return test_acc >= chance + RECOVER_GAIN and majority_share < RECOVER_SHARE


def _fmt(row: dict) -> str:
    return f"{row['change']} ({row['test_acc']:.2f})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def verdict(chance: float, baseline: dict, ablations: list[dict], evidence: dict | None = None) -> dict:
    """``collapsed``, the ``recovered`` changes, their ``factors`` and a one-sentence ``root_cause``.
    Ablation rows without a ``test_acc`` (skipped, not applicable) are ignored."""
    ran = [a for a in ablations if a.get("test_acc") is not None]
    collapsed = is_collapsed(baseline["test_acc"], baseline["majority_share"], chance)
    recovered = [a for a in ran if is_recovered(a["test_acc"], a["majority_share"], chance)]
    factors = sorted({a["factor"] for a in recovered}, key=lambda f: (f != PADDING, f))
    base = f"{baseline['test_acc']:.2f} with {baseline['majority_share']:.0%} of predictions in one class"
    # At chance without the 90% one-class mark is still a failure to explain, only not a full collapse.
    at_chance = abs(baseline["test_acc"] - chance) <= COLLAPSE_MARGIN
    state = "collapsed" if collapsed else "stayed at chance without fully collapsing"
    out = {"collapsed": collapsed, "at_chance": at_chance, "recovered": [a["change"] for a in recovered],
           "factors": factors}
    if not at_chance:
        cause = (f"The baseline did not fail (test accuracy {base}, chance {chance:.2f}), so there is "
                 "no failure to explain on this data.")
    elif not ran:
        cause = (f"The baseline {state} ({base}, chance {chance:.2f}), but no ablation ran within the "
                 "budget, so the cause is not established.")
    elif not recovered:
        best = max(ran, key=lambda a: a["test_acc"])
        cause = (f"The baseline {state} ({base}, chance {chance:.2f}) and no single tested change recovered "
                 f"it (best: {_fmt(best)}): the cause is none of the tested factors alone.")
    else:
        failed = [a for a in ran if a not in recovered]
        tail = f"; {_join([_fmt(a) for a in failed])} did not" if failed else ""
        if factors == [PADDING]:
            pad = (evidence or {}).get("readout_padding", {})
            where = ""
            if pad.get("readout_on_pad_share", 0) > 0:
                where = (f" ({pad['readout_on_pad_share']:.0%} of test reviews are read after a mean of "
                         f"{pad['mean_pad_steps_when_on_pad']:.0f} pad steps, so the output barely depends "
                         "on the text)")
            cause = (f"Post-padding with the output read at the last padded step{where}: "
                     f"{_join([_fmt(a) for a in recovered])} each recover accuracy from {base} "
                     f"(chance {chance:.2f}){tail}.")
        else:
            named = [f"{f}: " + _join([_fmt(a) for a in recovered if a["factor"] == f]) for f in factors]
            cause = (f"Several factors each recover accuracy from {base} (chance {chance:.2f}) - "
                     f"{'; '.join(named)}{tail}.")
    out["root_cause"] = cause
    return out


# ------------------------------------------------------------------------------------------ runs

def baseline_flat(hidden_size: int, max_len: int, epochs: int, batch_size: int, seed: int) -> dict:
    return {"arch": "lstm", "hidden_size": hidden_size, "num_layers": 1, "bidirectional": False, "dropout": 0.0,
            "readout": "last_step", "padding": "post", "pad_to_longest": True, "softmax_loss": True,
            "faithful": False, "shuffle": True, "freeze_embeddings": False, "lr": 1e-3, "optimizer": "adam",
            "grad_clip": 0.0, "batch_size": batch_size, "max_len": max_len, "epochs": epochs, "seed": seed}


def derive(base: dict, changes: dict) -> dict:
    """The baseline with some keys changed; keys of the LSTM are dropped when the arch changes."""
    flat = {**base, **changes}
    if flat["arch"] != "lstm":
        flat = {k: v for k, v in flat.items() if k not in LSTM_ONLY or k in changes}
    return flat


def subsample(store: store_mod.Store, fraction: float, seed: int, test_cap: int = 0) -> store_mod.Store:
    """The store with only a stratified ``fraction`` of its training rows (and at most ``test_cap`` test
    and valid rows); dropped rows get split code -1, which no split selects."""
    codes = store.split_codes.copy()
    rng = np.random.default_rng(seed)
    for split, keep in (("train", fraction), ("valid", None), ("test", None)):
        rows = store.indices(split)
        for label in np.unique(store.labels[rows]):
            part = rng.permutation(rows[store.labels[rows] == label])
            n = len(part) if keep is None else max(1, int(round(len(part) * keep)))
            if keep is None and test_cap:
                n = min(n, max(1, test_cap // max(store.num_classes, 1)))
            codes[part[n:]] = -1
    return dataclasses.replace(store, split_codes=codes, _split_cache={})


def measure_epoch_s(cfg: TrainConfig, store: store_mod.Store, steps: int = 3) -> float:
    """Seconds per baseline epoch (train + evaluation), from a few timed training steps."""
    session = Session(cfg, store, torch.device("cpu"))
    rows = store.indices("train")
    plan = session.batcher.plan(rows, cfg.batch_size, np.random.default_rng(cfg.seed))
    session.step(plan[0])  # warm-up
    t0 = time.perf_counter()
    for batch in plan[1:steps + 1]:
        session.step(batch)
    per_step = (time.perf_counter() - t0) / max(len(plan[1:steps + 1]), 1)
    evaluated = len(store.indices("valid")) + len(store.indices("test"))
    return per_step * len(plan) * (1 + 0.35 * evaluated / max(len(rows), 1))  # eval ~1/3 of a train step


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
    logits, labels = probes.test_logits(session, test)
    grad_rows = test[np.random.default_rng(cfg.seed).permutation(len(test))[:64]]
    return {"prediction_histogram": probes.prediction_histogram(logits.argmax(axis=1), store.num_classes),
            "logit_spread": probes.logit_spread(logits, labels),
            "readout_padding": probes.readout_padding(session, test),
            "gradient_by_position": probes.gradient_by_position(session, grad_rows),
            "loss_curve": probes.loss_curve(history, store.num_classes, softmax_loss=cfg.softmax_loss)}


# ------------------------------------------------------------------------------------------ report

def compare(rows: list[dict], ablations: list[dict]) -> dict:
    """The author's question in one sentence: the fixed LSTM against the CNN and fastText (and the best
    one-factor fix of the seed's LSTM, which still pads every review to the longest)."""
    ran = [r for r in rows if r.get("test_acc") is not None]
    fixes = [a for a in ablations if a.get("test_acc") is not None]
    parts = [f"{r['change']} {r['test_acc']:.3f} in {r['train_time_s']:.0f} s "
             f"({r['params_no_embedding']:,} params w/o embeddings)" for r in ran]
    answer = "No comparison run fitted the budget."
    if ran:
        best = max(ran, key=lambda r: r["test_acc"])
        answer = (f"Same data, same epochs: {'; '.join(parts)}. Best: {best['change']}."
                  + ("" if len(ran) == len(rows) else " (some runs skipped for time)"))
    if fixes:
        fix = max(fixes, key=lambda a: a["test_acc"])
        answer += (f" Best one-factor fix of the seed LSTM: {fix['change']} {fix['test_acc']:.3f} in "
                   f"{fix['train_time_s']:.0f} s.")
    return {"rows": rows, "answer": answer}


def render(r: dict) -> str:
    s, b, ev = r["settings"], r["baseline"], r["evidence"]
    hist, spread, pad = ev["prediction_histogram"], ev["logit_spread"], ev["readout_padding"]
    grad, loss = ev["gradient_by_position"], ev["loss_curve"]
    t = r["thresholds"]
    md = ["# Why the LSTM predicts one class", "",
          f"**Collapsed: {'yes' if r['collapsed'] else 'no'}; at chance: {'yes' if r.get('at_chance') else 'no'}.** "
          f"{r['root_cause']}", "",
          f"**The author's question (fixed LSTM vs CNN):** {r['comparison']['answer']}", "",
          *(["*Smoke run (a few hundred rows, 1 epoch): checks the pipeline; too little training for a "
             "verdict.*", ""] if s["smoke"] else []),
          "## Settings", "",
          f"- Store `{s['store']}` (content hash `{s['store_hash'][:16]}`), {s['store_rows']:,} rows, "
          f"{s['num_classes']} classes, {s['vector_size']}-d word2vec; runs used train/valid/test "
          f"{s['rows']['train']}/{s['rows']['valid']}/{s['rows']['test']} rows "
          f"({s['train_fraction']:.0%} of the training rows).",
          f"- LSTM {s['num_layers']} x {s['hidden_size']}, max_len {s['max_len']}, batch {s['batch_size']}, "
          f"{s['epochs']} epoch(s) per run, seed {s['seed']}, {s['threads']} CPU thread(s); budget "
          f"{s['budget_s'] / 60:.1f} min, used {s['elapsed_s'] / 60:.1f} min.",
          f"- Baseline `lstm_seed`: the seed's recipe - every review post-padded to the longest (max_len), "
          "the output read at the last padded step, softmax before CrossEntropyLoss, Adam 1e-3, rows "
          f"reshuffled every epoch; batches of {s['batch_size']} instead of the seed's 1 so it fits the budget; "
          "sparse embedding updates.",
          f"- Collapsed = at least {t['collapse_share']:.0%} of test predictions in one class and accuracy "
          f"within {t['collapse_margin']} of chance ({r['chance']:.3f}). Recovered = accuracy >= chance + "
          f"{t['recover_gain']} and under {t['recover_share']:.0%} of predictions in one class.", "",
          "## Baseline and evidence", "",
          f"- Test accuracy {b['test_acc']:.3f} (chance {r['chance']:.3f}), macro F1 {b['macro_f1']:.3f}; "
          f"predictions per class {hist['pred_hist']}: majority share {hist['majority_share']:.2f}, entropy "
          f"{hist['pred_entropy_bits']:.3f} of {hist['max_entropy_bits']:.3f} bits.",
          f"- Logits across test inputs: std {', '.join(f'{v:.3f}' for v in spread['logit_std'])} vs mean "
          f"magnitude {', '.join(f'{v:.3f}' for v in spread['logit_mean_abs'])} (ratio "
          f"{spread['spread_ratio']:.3f}); std of the predicted probabilities {spread['prob_std']:.4f}; "
          f"AUC of the logits for the true class {spread.get('label_auc', float('nan')):.3f} (0.5 = unrelated "
          "to the text's label).",
          f"- Readout: {pad['readout_on_pad_share']:.0%} of test reviews are read at a pad position, after a mean "
          f"of {pad['mean_pad_steps_before_readout']:.0f} pad steps (mean length {pad['mean_length']:.0f}, "
          f"padded width {pad['mean_width']:.0f}, {pad['padding']}-padding, readout {pad['readout']})."]
    if "skipped" not in grad:
        md.append(f"- Gradient reaching the embedded input (mean L2 norm per step): first {grad['edge_steps']} "
                  f"steps {grad['grad_first_steps']:.2e}, last {grad['edge_steps']} real steps "
                  f"{grad['grad_last_real_steps']:.2e}, pad steps {grad['grad_pad_steps']:.2e}; embedding "
                  f"table {grad['embedding_table_grad_norm']:.2e}.")
    md += [f"- Training loss per epoch {', '.join(f'{v:.4f}' for v in loss['train_loss'])} vs ln(K) = "
           f"{loss['ln_k']:.4f} (ratio {loss['loss_vs_ln_k']:.3f}; lowest reachable with softmax before the "
           f"loss: {loss['loss_floor']:.3f}).", "",
           "## One change at a time", "",
           "| change | factor | test acc | majority share | train s (incl. eval) | recovered |",
           "|---|---|---|---|---|---|",
           f"| (baseline) | - | {b['test_acc']:.3f} | {b['majority_share']:.2f} | {b['train_time_s']:.0f} | - |"]
    for a in r["ablations"]:
        if a.get("test_acc") is None:
            md.append(f"| {a['change']} | {a['factor']} | - | - | - | not run: {a['skipped']} |")
        else:
            md.append(f"| {a['change']} | {a['factor']} | {a['test_acc']:.3f} | {a['majority_share']:.2f} | "
                      f"{a['train_time_s']:.0f} | {'yes' if a['change'] in r['recovered'] else 'no'} |")
    md += ["", "## Fixed LSTM vs CNN vs fastText (same data, same epochs)", "",
           "| model | recipe | test acc | macro F1 | train s | samples/s | params w/o embeddings |",
           "|---|---|---|---|---|---|---|"]
    for c in r["comparison"]["rows"]:
        if c.get("test_acc") is None:
            md.append(f"| {c['change']} | {c['recipe']} | - | - | - | - | not run: {c['skipped']} |")
        else:
            md.append(f"| {c['change']} | {c['recipe']} | {c['test_acc']:.3f} | {c['macro_f1']:.3f} | "
                      f"{c['train_time_s']:.0f} | {c['samples_per_s']:.0f} | {c['params_no_embedding']:,} |")
    return "\n".join(md) + "\n"


# ------------------------------------------------------------------------------------------ CLI

def add_arguments(parser) -> None:
    parser.add_argument("--store", required=True, help="store folder or URI")
    parser.add_argument("--out", required=True, help="folder for diagnosis.md and diagnosis.json")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="wall-clock budget for all runs")
    parser.add_argument("--epochs", type=int,
                        help=f"epochs per run (default: what fits the budget, {MIN_EPOCHS}..{MAX_EPOCHS})")
    parser.add_argument("--hidden-size", type=int, default=64, help="LSTM hidden size (1 layer)")
    parser.add_argument("--max-len", type=int, default=400, help="tokens kept per review = the padded width")
    parser.add_argument("--batch-size", type=int, default=16, help="the seed used 1; 16 fits the budget")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: a few hundred rows, 1 epoch")


def main(args) -> int:
    started = time.perf_counter()
    try:
        if args.budget_minutes <= 0 or (args.epochs is not None and args.epochs < 1):
            raise ValueError("--budget-minutes and --epochs must be positive")
        store = store_mod.load(args.store)
        if store.num_classes < 2 or min(len(store.indices(s)) for s in ("train", "test")) == 0:
            raise ValueError(f"store {args.store} needs at least 2 classes and train and test rows")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        TrainConfig.from_flat(baseline_flat(args.hidden_size, args.max_len, 1, args.batch_size, args.seed))
    except (ValueError, store_mod.StoreError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    budget_s = args.budget_minutes * 60
    full_store, fraction = store, 1.0
    hidden, max_len = args.hidden_size, args.max_len
    if args.smoke:
        hidden, max_len = min(hidden, 16), min(max_len, 100)
        fraction = min(1.0, 300 / len(store.indices("train")))
        store = subsample(store, fraction, args.seed, test_cap=200)
    base = baseline_flat(hidden, max_len, args.epochs or 1, args.batch_size, args.seed)
    _log(f"store {args.store}: {len(full_store.labels):,} rows, {store.num_classes} classes; budget "
         f"{budget_s / 60:.1f} min; measuring the baseline's step time")
    epoch_s = measure_epoch_s(TrainConfig.from_flat(base), store)
    # Epochs are sized so the baseline, the first CORE ablations and the comparisons fit (in baseline-epoch
    # units); the remaining ablations run while time is left.
    units = 1 + sum(c for *_, c in ABLATIONS[:CORE]) + sum(c for *_, c in COMPARISONS)
    if args.smoke or args.epochs:
        epochs = 1 if args.smoke else args.epochs
    else:
        epochs = int(max(MIN_EPOCHS, min(MAX_EPOCHS, 0.85 * budget_s // (units * epoch_s))))
        if epochs * units * epoch_s > 0.85 * budget_s:
            # Even MIN_EPOCHS do not fit: train every run on the same stratified subsample of the rows.
            fraction = max(0.25, 0.85 * budget_s / (epochs * units * epoch_s))
            store = subsample(full_store, fraction, args.seed)
            epoch_s *= fraction
    base["epochs"] = epochs
    _log(f"~{epoch_s:.0f} s per baseline epoch: {epochs} epoch(s) per run on {fraction:.0%} of the training rows")

    def left() -> float:
        return budget_s - (time.perf_counter() - started)

    _log("baseline lstm_seed (post-padding, last-step readout, softmax before the loss)")
    history, state, wall = run(base, store, args.threads, keep_state=True)
    chance = 1.0 / store.num_classes
    _log("probing the baseline")
    evidence = probe_baseline(base, store, state, history)
    del state
    epoch_s = wall / epochs  # measured now, for the estimates below
    baseline = {"name": "lstm_seed", **row("baseline", history, wall),
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

    ablations = []
    for name, factor, changes, cost in ABLATIONS[:CORE]:
        ablations.append(maybe_run(name, changes, cost, factor=factor))
    comparisons = [maybe_run(name, changes, cost, recipe=recipe) for name, recipe, changes, cost in COMPARISONS]
    for name, factor, changes, cost in ABLATIONS[CORE:]:
        ablations.append(maybe_run(name, changes, cost, factor=factor))
    ablations += [{"change": name, "factor": name, "test_acc": None, "skipped": why} for name, why in NOT_APPLICABLE]

    result = verdict(chance, baseline, ablations, evidence)
    settings = {"store": args.store, "store_hash": store.content_hash, "num_classes": store.num_classes,
                "rows": {s: int(len(store.indices(s))) for s in store_mod.SPLITS},
                "store_rows": int(len(full_store.labels)), "train_fraction": round(fraction, 3),
                "vector_size": store.embedding_dim, "hidden_size": hidden, "num_layers": 1, "epochs": epochs,
                "max_len": max_len, "batch_size": args.batch_size, "seed": args.seed, "smoke": args.smoke,
                "threads": torch.get_num_threads(), "budget_s": budget_s,
                "elapsed_s": round(time.perf_counter() - started, 1), "baseline_config": base}
    report = {"chance": chance, "baseline": baseline, "collapsed": result["collapsed"],
              "at_chance": result["at_chance"],
              "root_cause": result["root_cause"], "recovered": result["recovered"], "factors": result["factors"],
              "evidence": evidence, "ablations": ablations, "comparison": compare(comparisons, ablations),
              "thresholds": {"collapse_share": COLLAPSE_SHARE, "collapse_margin": COLLAPSE_MARGIN,
                             "recover_gain": RECOVER_GAIN, "recover_share": RECOVER_SHARE},
              "settings": settings}
    (out / "diagnosis.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "diagnosis.md").write_text(render(report))
    _log(f"collapsed={result['collapsed']}; {result['root_cause']}")
    _log(f"wrote {out / 'diagnosis.md'} and {out / 'diagnosis.json'} in {settings['elapsed_s']:.0f} s")
    return 0
