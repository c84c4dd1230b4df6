"""``python -m study report``: every report file of a study, read from its folder without Ray or torch.

    python -m study report --storage-path results/experiments --name demo --out results/demo

writes into ``--out``:
    trials.parquet      one row per trial: metrics of its last report, ``config/<name>`` hyperparameters,
                        derived ``train_s_per_1k_samples`` (= 1000 / samples_per_s), ``num_classes`` and
                        ``collapsed`` (``study.train.metrics.is_collapsed``)
    pareto.json         {"accuracy": "val_acc", "anchor": the constant predictor (zero cost, its val/test
                        accuracy), "costs": {cost: what it measures}, "fronts": {cost: [points, cheapest
                        first]}, each point {trial_id, arch, <cost>, n_runs, val_acc_mean, val_acc_ci95,
                        test_acc_mean, test_acc_ci95} (half-widths, see noise.py), "below_constant":
                        [trial ids], "paired_tests": [{a, b, diff, lo, hi, p, n, ...}],
                        "hypervolumes": {cost: {"value", "reference": {"accuracy", "cost"}, "axes"}}
                        (hypervolume.py: accuracy above chance x log10 cost)}
    pareto_<cost>.png/.svg  static plots (plots.py) of ``pareto.DEFAULT_PLOTS`` (``--all-plots``: every
                        cost), pareto.html (page.py): every cost, error bars, the constant predictor
    importance.png/.svg which hyperparameters matter per architecture (importance.py, Optuna's fANOVA)
    summary.md          summary.py: the answer first (answer.py: the winner at each training budget with
                        its paired test, published results beside the best), the original study's table measured, embedding kind x frozen/fine-tuned,
                        the fronts in words, noise, hyperparameter importance, failed and collapsed trials

It works on a study that is still running or was interrupted: only finished trials (Ray status
TERMINATED) with metrics enter the fronts and the table; every status is counted, ERROR rows are listed.
Fronts, tables and plots are over *configurations*: a search trial with its repeats, its accuracies the
mean over its runs (``noise.configurations``); trials.parquet keeps one row per run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from study import experiment
from data_prep import store as store_mod
from study.analysis import answer, importance, noise, pareto
from study.analysis.hypervolume import all_hypervolumes
from study.analysis.page import write_page
from study.analysis.plots import plot_front
from study.analysis.results import load_predictions, trials_frame
from study.analysis.summary import noise_section, summary_markdown
from study.analysis.table import best_per_arch, parquet_ready, trials_table
from study.errors import reported_as_usage


def write_report(frame: pd.DataFrame, out_dir, diagnosis_path=None, *, splits: noise.Splits | None = None,
                 predictions: dict | None = None, launch: dict | None = None,
                 all_plots: bool = False, manifest: dict | None = None) -> dict[str, Path]:
    """Write every report file into ``out_dir``; returns {name: path}. ``diagnosis_path`` defaults to
    ``out_dir/diagnosis.md`` (linked from summary.md when it exists). ``splits``: the store's evaluation
    splits (default: guessed from the trials); ``predictions``: {trial_id: best-epoch predictions}
    (``results.load_predictions``) for the paired tests; ``launch``: the study's launch.json (price);
    ``manifest``: the store's manifest (its corpus and split sizes, for the published anchors)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    launch = launch or {}
    t = pareto.with_prices(trials_table(frame), launch.get("price_per_hour"),
                           launch.get("cpus_per_trial", 1.0), launch.get("gpus_per_trial", 0.0))
    splits = splits or noise.Splits.guessed(t)
    t = pareto.mark_constant(t, splits.constant_val)
    configs = pareto.mark_constant(noise.configurations(t, splits), splits.constant_val)
    costs = [c for c in pareto.COSTS if c in configs.columns]
    points = {c: pareto.front_points(configs, c) for c in costs}
    fronts = {c: [p["trial_id"] for p in pts] for c, pts in points.items()}
    tests = noise.compare(configs, noise_pairs(configs, fronts), predictions or {})
    files = {"trials.parquet": out_dir / "trials.parquet", "pareto.json": out_dir / "pareto.json"}
    parquet_ready(t).to_parquet(files["trials.parquet"], index=False)
    anchor = {"predictor": pareto.CONSTANT, "cost": 0, "val_acc": splits.constant_val,
              "test_acc": splits.constant_test, "source": splits.source}
    doc = {"accuracy": pareto.ACCURACY, "anchor": anchor,
           "costs": {c: pareto.COSTS[c][1] for c in costs}, "fronts": points,
           "below_constant": list(configs.loc[configs["below_constant"], "trial_id"].astype(str)),
           "intervals": "95% half-widths: Wilson over the split's reviews, with Student's t over seeds "
                        "when a configuration has several runs (study/analysis/noise.py)",
           "paired_tests": tests, "hypervolumes": all_hypervolumes(configs, fronts)}
    files["pareto.json"].write_text(json.dumps(_json_ready(doc), indent=2, default=str, allow_nan=False) + "\n")
    plotted = [c for c in costs if (all_plots or c in pareto.DEFAULT_PLOTS)
               and (configs[c].notna().any() or c == "train_time_s")]
    for cost in plotted:
        png, svg = plot_front(configs, cost, out_dir, anchor=anchor)
        files[png.name], files[svg.name] = png, svg
    files["pareto.html"] = write_page(configs, fronts, out_dir / "pareto.html", anchor=anchor)
    diagnosis = Path(diagnosis_path) if diagnosis_path else out_dir / "diagnosis.md"
    # what the search explored: search trials only (repeats re-train chosen configurations)
    searched = t[t["repeat_of"].isna()] if "repeat_of" in t.columns else t
    weights = importance.compute(searched)
    files.update(importance.write_plot(weights, out_dir))
    files["summary.md"] = out_dir / "summary.md"
    opening = answer.markdown(configs, answer.cost_ladder(configs, predictions or {}), manifest)
    files["summary.md"].write_text(summary_markdown(configs, {c: fronts[c] for c in plotted}, diagnosis, out_dir,
                                                    noise=noise_section(t, configs, tests, splits),
                                                    importance=weights, answer=opening))
    return files


def _json_ready(v):
    """NaN -> null (JSON has no NaN), numpy numbers -> Python ones, recursively."""
    if isinstance(v, dict):
        return {k: _json_ready(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_ready(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def noise_pairs(configs: pd.DataFrame, fronts: dict[str, list[str]]) -> list[tuple[str, str]]:
    """What the report compares: the best configuration of each architecture against each other's, then
    adjacent members of the default fronts (more accurate first)."""
    best = list(best_per_arch(configs)["trial_id"].astype(str))
    pairs = [(a, b) for i, a in enumerate(best) for b in best[i + 1:]]
    acc = dict(zip(configs["trial_id"].astype(str), configs[pareto.ACCURACY]))
    for cost in (c for c in pareto.DEFAULT_PLOTS if c in fronts):
        ids = sorted(fronts[cost], key=lambda i: -acc[i])
        pairs += list(zip(ids, ids[1:]))
    out, seen = [], set()
    for a, b in pairs:
        a, b = (a, b) if acc[a] >= acc[b] else (b, a)     # the more accurate first: diffs read positive
        if (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-path", required=True, help="Ray Tune storage path of the study")
    parser.add_argument("--name", required=True, help="experiment name under the storage path")
    parser.add_argument("--out", required=True, help="folder for the report files")
    parser.add_argument("--diagnosis", default=None,
                        help="diagnosis.md to link (default: OUT/diagnosis.md when present)")
    parser.add_argument("--all-plots", action="store_true",
                        help="a PNG/SVG for every cost axis, not only " + ", ".join(pareto.DEFAULT_PLOTS))


def main(args: argparse.Namespace) -> int:
    """``python -m study report`` (registered in ``study/__main__.py``)."""
    path = experiment.experiment_path(args.storage_path, args.name)
    frame = trials_frame(path)
    launch = experiment.read_json(f"{path}/{experiment.LAUNCH_FILE}") or {}
    try:
        manifest = store_mod.read_manifest(launch["store"])
        splits = noise.Splits.from_manifest(manifest)
    except (KeyError, store_mod.StoreError, OSError):
        manifest = splits = None  # the store moved or is gone: balanced classes are assumed (said in pareto.json)
    predictions = load_predictions(path, frame["trial_id"]) if len(frame) else {}
    with reported_as_usage(ValueError):
        files = write_report(frame, args.out, args.diagnosis, splits=splits, predictions=predictions,
                             launch=launch, all_plots=args.all_plots, manifest=manifest)
    counts = ", ".join(f"{k} {v}" for k, v in frame["status"].value_counts().items()) if len(frame) else ""
    print(f"report of {len(frame)} trials ({counts}) -> {args.out}: {', '.join(sorted(files))}")
    return 0



if __name__ == "__main__":
    from study.__main__ import main as cli

    sys.exit(cli(["report", *sys.argv[1:]]))
