"""``python -m study report``: every report file of a study, read from its folder without Ray or torch.

    python -m study report --storage-path results/experiments --name demo --out results/demo

writes into ``--out``:
    trials.parquet      one row per trial: metrics of its last report, ``config/<name>`` hyperparameters,
                        derived ``train_s_per_1k_samples`` (= 1000 / samples_per_s), ``num_classes`` and
                        ``collapsed`` (``study.train.metrics.is_collapsed``)
    pareto.json         {"accuracy": "val_acc", "fronts": {cost: [trial ids, cheapest first]}}
    pareto_<cost>.png/.svg  static plots (plots.py), pareto.html (page.py)
    importance.png/.svg which hyperparameters matter per architecture (importance.py, Optuna's fANOVA)
    summary.md          summary.py: the original study's table measured, frozen vs fine-tuned embeddings,
                        the fronts in words, hyperparameter importance, failed and collapsed trials

It works on a study that is still running or was interrupted: only finished trials (Ray status
TERMINATED) with metrics enter the fronts and the table; every status is counted, ERROR rows are listed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from study import experiment
from study.analysis import importance, pareto
from study.analysis.page import write_page
from study.analysis.plots import plot_front
from study.analysis.results import trials_frame
from study.analysis.summary import summary_markdown
from study.analysis.table import parquet_ready, trials_table
from study.errors import reported_as_usage


def write_report(frame: pd.DataFrame, out_dir, diagnosis_path=None) -> dict[str, Path]:
    """Write every report file into ``out_dir``; returns {name: path}. ``diagnosis_path`` defaults to
    ``out_dir/diagnosis.md`` (linked from summary.md when it exists)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = trials_table(frame)
    fronts = pareto.all_fronts(t)
    files = {"trials.parquet": out_dir / "trials.parquet", "pareto.json": out_dir / "pareto.json"}
    parquet_ready(t).to_parquet(files["trials.parquet"], index=False)
    files["pareto.json"].write_text(json.dumps({"accuracy": pareto.ACCURACY, "fronts": fronts},
                                               indent=2) + "\n")
    for cost in fronts:
        png, svg = plot_front(t, cost, out_dir)
        files[png.name], files[svg.name] = png, svg
    files["pareto.html"] = write_page(t, fronts, out_dir / "pareto.html")
    diagnosis = Path(diagnosis_path) if diagnosis_path else out_dir / "diagnosis.md"
    weights = importance.compute(t)
    files.update(importance.write_plot(weights, out_dir))
    files["summary.md"] = out_dir / "summary.md"
    files["summary.md"].write_text(summary_markdown(t, fronts, diagnosis, out_dir, weights))
    return files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-path", required=True, help="Ray Tune storage path of the study")
    parser.add_argument("--name", required=True, help="experiment name under the storage path")
    parser.add_argument("--out", required=True, help="folder for the report files")
    parser.add_argument("--diagnosis", default=None,
                        help="diagnosis.md to link (default: OUT/diagnosis.md when present)")


def main(args: argparse.Namespace) -> int:
    """``python -m study report`` (registered in ``study/__main__.py``)."""
    frame = trials_frame(experiment.experiment_path(args.storage_path, args.name))
    with reported_as_usage(ValueError):
        files = write_report(frame, args.out, args.diagnosis)
    counts = ", ".join(f"{k} {v}" for k, v in frame["status"].value_counts().items()) if len(frame) else ""
    print(f"report of {len(frame)} trials ({counts}) -> {args.out}: {', '.join(sorted(files))}")
    return 0



if __name__ == "__main__":
    from study.__main__ import main as cli

    sys.exit(cli(["report", *sys.argv[1:]]))
