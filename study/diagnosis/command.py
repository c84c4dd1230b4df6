"""Why does the original study's LSTM predict one class? Train it, probe it, change one factor at a time
with several seeds, name the cause and how sure it is.

    python -m study diagnose --store /tmp/imdb5k --out /tmp/diag5k                # 10-min budget; 8 min measured (2 idle cores)
    python -m study diagnose --store S --out D --hidden-size 256 --num-layers 2 --baseline-only
    python -m study diagnose --store S --out D --address HEAD:6379                # runs spread over a cluster
    python -m study diagnose --store S --out D --smoke --in-process               # tiny, seconds, no Ray

Writes ``OUT/diagnosis.json`` (for tools) and ``OUT/diagnosis.md`` (for people):

1. Baseline: the original study's LSTM recipe (plan.py), default 1 layer x 64 (``--hidden-size``,
   ``--num-layers``; the original was 2 x 256): every review post-padded to the longest, the output read at
   the last padded step, softmax before CrossEntropyLoss, Adam 1e-3, rows reshuffled every epoch and batched
   in that order. Unlike the original study: batches of ``--batch-size`` and sparse embedding updates.
2. The comparisons (fixed LSTM, the original study's CNN, fastText): they answer the author's question and
   set the bar for "recovered" (verdict.py).
3. One-factor changes in priority order (padding/readout fixes, then the alternative causes, then extras),
   and, when runs learn and then collapse, a two-factor follow-up (a readout fix + the usual remedy).
4. Every condition with ``--seeds`` random seeds, each run judged at its best validation epoch (runs.py),
   the baseline's runs probed (probes.py); the verdict counts seeds (verdict.py).

Runs are Ray tasks, one CPU thread each, over the local machine or the cluster at ``--address``
(study/search/fanout.py), or all in this process with ``--in-process``. Sizing: each condition's step
time (CPU time, see plan.py) is measured first, then every run trains on the same stratified sample of
the training rows, the largest of a fixed ladder that lets every run fit the budget on an otherwise idle
machine (``--train-rows`` pins it). A rerun into the same ``--out`` reuses the step times measured there
(``--remeasure`` measures again), so it picks the same rows and repeats the table exactly. Runs still
unfinished at 2 x the budget are cancelled and listed.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from data_prep import store as store_mod
from study.diagnosis import plan
from study.diagnosis.plan import BASELINE, COMPARISON, ONE_FACTOR, PADDING, Condition
from study.diagnosis.render import compare, render
from study.diagnosis.runs import LocalRunner, run_one
from study.diagnosis.verdict import (RECOVER_FRACTION, RECOVER_SHARE, UNSTABLE, judge_run, recovery_bar,
                                     readout_fix_to_stabilise, verdict)
from study.errors import reported_as_usage
from study.train import metrics
from study.train.config import TrainConfig

FOLLOW_UP_SLOT = "follow-up (if added)"  # its step time is counted in the sizing before it is known to run
OVERRUN = 2.0  # runs still going at this multiple of the budget are cancelled (a busy machine runs slower)


def _log(msg: str) -> None:
    print(f"[diagnose] {msg}", file=sys.stderr, flush=True)


def add_arguments(parser) -> None:
    parser.add_argument("--store", required=True, help="store folder or URI (every node must read it)")
    parser.add_argument("--out", required=True, help="folder for diagnosis.md and diagnosis.json")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="wall-clock budget for all runs")
    parser.add_argument("--seeds", type=int, default=3, help="random seeds per condition")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (each run judged at its best)")
    parser.add_argument("--train-rows", type=int, help="training rows per run (default: what fits the budget)")
    parser.add_argument("--hidden-size", type=int, default=64, help="baseline LSTM hidden size (original: 256)")
    parser.add_argument("--num-layers", type=int, default=1, help="baseline LSTM layers (original: 2)")
    parser.add_argument("--max-len", type=int, default=400, help="tokens kept per review = the padded width")
    parser.add_argument("--batch-size", type=int, default=16, help="the original study used 1")
    parser.add_argument("--seed", type=int, default=0, help="first random seed; also picks the training sample")
    parser.add_argument("--baseline-only", action="store_true",
                        help="only the baseline and the comparisons (e.g. to try the original 2 x 256 size)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else start Ray locally)")
    parser.add_argument("--in-process", action="store_true", help="run everything here, one run at a time, no Ray")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure the step times again instead of reusing those of an earlier run in --out")
    parser.add_argument("--smoke", action="store_true", help="tiny and fast: a few hundred rows, checks the pipeline")


def _inputs(args):
    """The store, output folder and baseline, validated; bad input becomes a one-line usage error."""
    with reported_as_usage(ValueError, store_mod.StoreError, OSError):
        for name in ("budget_minutes", "seeds", "epochs", "hidden_size", "num_layers", "max_len", "batch_size"):
            if getattr(args, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if args.train_rows is not None and args.train_rows < 2:
            raise ValueError("--train-rows must be at least 2")
        store = store_mod.load(args.store)
        if store.num_classes < 2 or min(len(store.indices(s)) for s in store_mod.SPLITS) == 0:
            raise ValueError(f"store {args.store} needs at least 2 classes and train, valid and test rows")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        hidden, max_len = (min(args.hidden_size, 16), min(args.max_len, 100)) if args.smoke else \
            (args.hidden_size, args.max_len)
        base = plan.baseline_flat(hidden, args.num_layers, max_len, 2 if args.smoke else args.epochs,
                                  args.batch_size, args.seed)
        TrainConfig.from_flat(base)
    return store, out, base


def main(args) -> int:
    started = time.perf_counter()
    store, out, base = _inputs(args)
    store_path = args.store if "://" in args.store else os.path.abspath(args.store)
    budget_s = args.budget_minutes * 60
    test_cap = 200 if args.smoke else 0
    train_rows = args.train_rows or (300 if args.smoke else None)
    seeds = plan.seeds(args.seed, 2 if args.smoke else args.seeds)
    conds = plan.conditions(args.baseline_only)
    _log(f"store {args.store}: {len(store.labels):,} rows, {store.num_classes} classes; {len(conds)} conditions "
         f"x {len(seeds)} seeds, {base['epochs']} epochs each; budget {budget_s / 60:.1f} min")
    # Step times are measured before Ray starts: its start-up would disturb them.
    step_s, measured = None, False
    if train_rows is None:
        step_s = None if args.remeasure else _measured_before(out, store, base, conds)
        measured = step_s is None
        step_s = step_s or _step_seconds(conds, base, store)
    runner = LocalRunner() if args.in_process else _fanout(args.address)
    try:
        sizing = None
        if train_rows is None:
            sizing = {**_size(step_s, base, store, budget_s, len(seeds), runner.workers),
                      "measured_here": measured, "machine": _machine()}
            train_rows = sizing["rows"]
        sample = plan.subsample(store, train_rows, args.seed, test_cap)
        rows = {s: int(len(sample.indices(s))) for s in store_mod.SPLITS}
        _log(f"{runner.workers} worker(s); every run trains on {rows['train']:,} rows (valid {rows['valid']}, "
             f"test {rows['test']})")
        spec = {"store": store_path, "train_rows": train_rows, "data_seed": args.seed, "test_cap": test_cap}
        results = _run_all(runner, conds, base, seeds, spec, store.num_classes, started + OVERRUN * budget_s)
    finally:
        runner.close()
    report = _report(results, store.num_classes)
    report["settings"] = {
        "store": args.store, "store_hash": store.content_hash, "num_classes": store.num_classes, "rows": rows,
        "store_rows": int(len(store.labels)), "train_rows": rows["train"], "vector_size": store.embedding_dim,
        "hidden_size": base["hidden_size"], "num_layers": base["num_layers"], "epochs": base["epochs"],
        "max_len": base["max_len"], "batch_size": base["batch_size"], "seeds": seeds, "smoke": args.smoke,
        "threads_per_run": 1, "workers": runner.workers, "ray": not args.in_process,
        "baseline_only": args.baseline_only, "budget_s": budget_s,
        "elapsed_s": round(time.perf_counter() - started, 1), "sizing": sizing, "baseline_config": base}
    report["not_tested"] = _not_tested(args, base, report)
    (out / "diagnosis.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "diagnosis.md").write_text(render(report))
    _log(f"collapsed={report['collapsed']}; {report['root_cause']}")
    _log(f"wrote {out / 'diagnosis.md'} and {out / 'diagnosis.json'} in {report['settings']['elapsed_s']:.0f} s")
    return 0


def _not_tested(args, base: dict, report: dict) -> list[str]:
    """What this diagnosis did not test, for the verdict to list."""
    items = list(plan.NOT_TESTED)
    if (base["num_layers"], base["hidden_size"]) != (2, 256):
        items.append(f"the original 2 x 256 size (this baseline: {base['num_layers']} x {base['hidden_size']}; "
                     "try --num-layers 2 --hidden-size 256)")
    if args.baseline_only:
        items.append("every one-factor change (--baseline-only)")
    items += [f"{a['change']} ({a['skipped']})" for a in report["ablations"] + report["comparison"]["rows"]
              if not a["runs"] and a.get("kind") != "not applicable"]
    return items


def _fanout(address):
    from study.search.fanout import Fanout

    _log("starting Ray" if not (address or os.environ.get("RAY_ADDRESS")) else f"joining Ray at {address}")
    return Fanout(address, cpus_per_task=1)


def _step_seconds(conds: list[Condition], base: dict, store) -> dict[str, float]:
    """Seconds per trained row on one thread for each condition, and for the follow-up it may add."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step_s = {c.name: plan.sample_seconds(plan.derive(base, c.changes), store) for c in conds}
        first = conds[0].name  # the first one paid the warm-up
        step_s[first] = min(step_s[first], plan.sample_seconds(base, store))
    finally:
        torch.set_num_threads(threads)
    step_s[FOLLOW_UP_SLOT] = step_s.get(plan.ONE_FACTOR_CHANGES[0].name, 0.0)
    return step_s


def _size(step_s: dict[str, float], base: dict, store, budget_s: float, n_seeds: int, workers: int) -> dict:
    """Training rows per run: the largest rung of the ladder whose runs fit the budget, and how the choice
    was made. Against the whole budget, not what start-up left of it, so that it depends on the measured
    step times only: Ray's start takes seconds more or less from one run to the next."""
    sizing = plan.size_runs(budget_s, list(step_s.values()), n_seeds, base["epochs"], workers,
                            len(store.indices("train")), len(store.indices("valid")), len(store.indices("test")))
    _log(f"baseline {step_s['baseline'] * 1000:.1f} ms (CPU) per trained row on one thread; {sizing.rows:,} "
         f"training rows per run fit: ~{sizing.wall_s / 60:.1f} min of runs on {workers} idle worker(s)"
         + (f"; a close call: a fresh measurement may pick the next rung (--train-rows {sizing.rows} pins it)"
            if sizing.close_call else ""))
    return {"rows": sizing.rows, "estimated_s": round(sizing.wall_s, 1), "close_call": sizing.close_call,
            "per_row_ms": {name: 1000 * t for name, t in step_s.items()}}


def _machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}"


def _measured_before(out: Path, store, base: dict, conds: list[Condition]) -> dict[str, float] | None:
    """The step times an earlier diagnosis in ``out`` measured for the same store, baseline and conditions on
    this machine, so that rerunning the same command sizes the runs alike and repeats the table: the runs are
    deterministic, but a fresh measurement varies by several percent, enough to pick a neighbouring rung
    when the budget lies near a rung's edge."""
    try:
        settings = json.loads((out / "diagnosis.json").read_text())["settings"]
        known = settings["sizing"]["per_row_ms"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    names = [c.name for c in conds] + [FOLLOW_UP_SLOT]
    if (settings.get("store_hash") != store.content_hash or settings.get("baseline_config") != base
            or settings["sizing"].get("machine") != _machine() or list(known) != names):
        return None
    _log(f"step times as measured by the earlier diagnosis in {out} (same store, baseline and machine; "
         "--remeasure measures them again)")
    return {name: known[name] / 1000 for name in names}


def _run_all(runner, conds: list[Condition], base: dict, seeds: list[int], spec: dict, num_classes: int,
             deadline: float) -> dict:
    """Submit every (condition, seed) in priority order, add the follow-up when it is called for, collect."""
    results = {c.name: {"condition": c, "runs": [], "errors": [], "skipped": None} for c in conds}
    pending = {}

    def submit(c: Condition) -> None:
        for seed in seeds:
            flat = {**plan.derive(base, c.changes), "seed": seed}
            pending[(c.name, seed)] = c
            runner.submit((c.name, seed), run_one, {**spec, "flat": flat, "probe": c.kind == BASELINE})

    for c in conds:
        submit(c)
    total, decided = len(pending), False
    while True:
        try:
            if time.perf_counter() > deadline:  # the in-process runner never times out by itself
                raise TimeoutError
            done = runner.next_done(timeout_s=max(deadline - time.perf_counter(), 1.0))
        except TimeoutError:
            for name, _seed in runner.cancel_pending():
                results[name]["skipped"] = f"out of budget (cancelled at {OVERRUN} x the budget)"
            _log("budget overrun: cancelled the runs still pending")
            break
        if done is None:
            break
        (name, seed), result, error = done
        pending.pop((name, seed))
        entry = results[name]
        if error:
            entry["errors"].append(f"seed {seed}: {error}")
        else:
            entry["runs"].append(result)
        finished = total - len(pending)
        _log(f"{finished}/{total} {name} seed {seed}: " + (f"failed: {error}" if error else
             f"test {result['test_acc']:.3f} at best epoch {result['best_epoch']} (val {result['val_acc']:.3f}; "
             f"last val {result['last_val_acc']:.3f}) {result['train_time_s']:.0f}s"))
        if not decided and _ready_for_follow_up(results, pending):
            decided = True
            follow = _follow_up(results, num_classes)
            if follow is not None:
                _log(f"runs learned and then collapsed: adding {follow.name}")
                results[follow.name] = {"condition": follow, "runs": [], "errors": [], "skipped": None}
                submit(follow)
                total += len(seeds)
    for entry in results.values():
        entry["runs"].sort(key=lambda r: r["seed"])
    return results


def _ready_for_follow_up(results: dict, pending: dict) -> bool:
    """The follow-up is decided once the baseline, the comparisons and the padding fixes have all finished."""
    watched = {n for n, e in results.items() if e["condition"].kind in (BASELINE, COMPARISON)
               or _is_readout_fix(e["condition"])}
    return not any(name in watched for name, _seed in pending)


def _is_readout_fix(c: Condition) -> bool:
    return c.kind == ONE_FACTOR and c.factor == PADDING


def _follow_up(results: dict, num_classes: int):
    """The two-factor follow-up, when the baseline's or a padding fix's runs learned and then collapsed."""
    chance = metrics.chance(num_classes)
    comparisons = [{"change": e["condition"].name, "runs": e["runs"]} for e in results.values()
                   if e["condition"].kind == COMPARISON]
    bar = recovery_bar(chance, comparisons)["acc"]
    fixes = [{"change": e["condition"].name, "factor": PADDING, "runs": e["runs"], "condition": e["condition"]}
             for e in results.values() if _is_readout_fix(e["condition"])]
    unstable_base = any(judge_run(r, bar, num_classes)["shape"] in UNSTABLE
                        for r in results["baseline"]["runs"])
    chosen = readout_fix_to_stabilise(fixes, bar, num_classes)
    if chosen is None and not unstable_base:
        return None
    return plan.follow_up(chosen["condition"] if chosen else plan.ONE_FACTOR_CHANGES[0])


def _entry(e: dict) -> dict:
    c = e["condition"]
    out = {"change": c.name, "kind": c.kind, ("recipe" if c.kind == COMPARISON else "factor"): c.factor,
           "keys": c.changes, "runs": e["runs"]}
    if e["errors"]:
        out["errors"] = e["errors"]
    if not e["runs"]:
        out["skipped"] = e["skipped"] or ("failed" if e["errors"] else "not run")
    return out


def _report(results: dict, num_classes: int) -> dict:
    chance = metrics.chance(num_classes)
    entries = {name: _entry(e) for name, e in results.items()}
    base_runs = entries["baseline"]["runs"]
    evidence = base_runs[0]["evidence"] if base_runs else {}
    baseline = {"name": "lstm_original", **entries.pop("baseline")}
    comparisons = [e for e in entries.values() if e["kind"] == COMPARISON]
    ablations = [e for e in entries.values() if e["kind"] != COMPARISON]
    v = verdict(chance, baseline, ablations, comparisons, evidence)
    base = v["baseline"]
    if evidence:
        base.update(pred_entropy_bits=evidence["prediction_histogram"]["pred_entropy_bits"],
                    loss_vs_ln_k=evidence["loss_curve"]["loss_vs_ln_k"])
    for run in base["runs"]:
        run.pop("evidence", None)  # the first seed's is kept whole under "evidence"
    return {"chance": chance, "baseline": base, "collapsed": v["collapsed"], "at_chance": v["at_chance"],
            "root_cause": v["root_cause"], "instability": v["instability"], "recovered": v["recovered"],
            "factors": v["factors"], "bar": v["bar"], "evidence": evidence,
            "ablations": v["ablations"] + [{"change": n, "factor": n, "kind": "not applicable", "runs": [],
                                            "test_acc": None, "skipped": why} for n, why in plan.NOT_APPLICABLE],
            "comparison": compare(v["comparisons"], v["ablations"]), "not_tested": plan.NOT_TESTED,
            "thresholds": {"collapse_share": metrics.COLLAPSE_SHARE, "collapse_margin": metrics.COLLAPSE_MARGIN,
                           "recover_fraction": RECOVER_FRACTION, "recover_share": RECOVER_SHARE}}
