"""The study report: trials table, Pareto fronts, plots, interactive page and a readable summary.

    python -m study report --storage-path results/experiments --name demo --out results/demo

writes into ``--out``:
    trials.parquet      one row per trial: metrics of its last report, ``config/<name>`` hyperparameters,
                        derived ``train_s_per_1k_samples`` (= 1000 / samples_per_s), ``num_classes`` and
                        ``collapsed`` (majority_share >= 0.9 and test_acc within 0.05 of 1/num_classes)
    pareto.json         {"accuracy": "val_acc", "fronts": {cost: [trial ids, cheapest first]}}
    pareto_<cost>.png/.svg  static plots (study.plots), pareto.html (study.page)
    summary.md          the seed's comparison table regenerated from measurements, freezing vs
                        fine-tuning embeddings, the fronts in words, failed and collapsed trials

It works on a study that is still running or was interrupted: only finished trials (Ray status
TERMINATED) with metrics enter the fronts and the table; every status is counted, ERROR rows are listed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from study import pareto
from study.config import TrainConfig, UsageError
from study.page import write_page
from study.plots import plot_front

COLLAPSE_SHARE = 0.9      # at least this share of test predictions in one class ...
COLLAPSE_MARGIN = 0.05    # ... and test accuracy within this of chance (1 / num_classes)
NUMERIC = ["val_acc", "test_acc", "macro_f1", "majority_share", "train_time_s", "epoch_time_s",
           "samples_per_s", "params_total", "params_trainable", "params_no_embedding",
           "max_params_per_layer", "epochs", "peak_rss_mb", "train_loss", "val_loss"]
REQUIRED = ["trial_id", "arch", "status"] + NUMERIC
# Hyperparameters shown under each architecture's best trial (those the trial has).
FREEZE_DEFAULT = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "freeze_embeddings")
KEY_PARAMS = ["batch_size", "lr", "optimizer", "freeze_embeddings", "max_len", "padding", "widths",
              "filters", "hidden_size", "num_layers", "bidirectional", "readout", "bigram_buckets",
              "dropout", "faithful"]


def trials_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise ``launch.trials_frame``'s output: required columns present, numbers numeric, derived
    cost and collapse columns added. Never fails on missing metrics (they become NaN)."""
    t = frame.copy().reset_index(drop=True)
    for col in REQUIRED:
        if col not in t.columns:
            t[col] = np.nan
    for col in NUMERIC:
        t[col] = pd.to_numeric(t[col], errors="coerce").astype(float)
    t["trial_id"] = t["trial_id"].astype(str)
    t["arch"] = t["arch"].fillna("?").astype(str)
    t["status"] = t["status"].fillna("UNKNOWN").astype(str)
    t = pareto.with_derived_costs(t)
    hist = t["pred_hist"] if "pred_hist" in t.columns else pd.Series(None, index=t.index, dtype=object)
    t["num_classes"] = [len(h) if isinstance(h, (list, tuple, np.ndarray)) and len(h) else np.nan
                        for h in hist]
    t["collapsed"] = collapsed_mask(t)
    return t


def collapsed_mask(t: pd.DataFrame) -> pd.Series:
    """True where a trial predicts (almost) one class at (about) chance accuracy; False when unknown."""
    chance = 1.0 / pd.to_numeric(t["num_classes"], errors="coerce")
    share = pd.to_numeric(t.get("majority_share"), errors="coerce")
    acc = pd.to_numeric(t.get("test_acc"), errors="coerce")
    out = (share >= COLLAPSE_SHARE) & ((acc - chance).abs() <= COLLAPSE_MARGIN)
    return out.fillna(False).astype(bool)


def parquet_ready(t: pd.DataFrame) -> pd.DataFrame:
    """Object columns Parquet cannot type (mixed lists/strings/NaN, e.g. ``config/widths``) as JSON text."""
    import pyarrow as pa

    out = t.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        vals = [None if (isinstance(v, float) and np.isnan(v)) else v for v in out[col]]
        try:
            pa.array(vals)
            out[col] = pd.Series(vals, index=out.index, dtype=object)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            out[col] = [None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
                        for v in vals]
    return out


def best_per_arch(t: pd.DataFrame) -> pd.DataFrame:
    """Each architecture's best finished trial by val_acc (ties: lower training time)."""
    done = t[t["status"].isin(pareto.FINISHED) & t["val_acc"].notna()]
    done = done.sort_values(["val_acc", "train_time_s"], ascending=[False, True], kind="stable")
    return done.groupby("arch", sort=True).head(1).sort_values("arch")


def seed_table(t: pd.DataFrame) -> str:
    """The seed's comparison table, one column per architecture's best trial."""
    best = best_per_arch(t)
    if best.empty:
        return "_No finished trial with metrics yet._\n"
    rows = [("Training time", lambda r: _duration(r["train_time_s"])),
            ("Epoch time", lambda r: _duration(r["epoch_time_s"])),
            ("Num epochs", _epochs),
            ("Samples/s (training)", lambda r: _num(r["samples_per_s"], 1)),
            ("Max params per layer", lambda r: _count(r["max_params_per_layer"])),
            ("Total params", lambda r: _count(r["params_total"])),
            ("Params without embeddings", lambda r: _count(r["params_no_embedding"])),
            ("Test accuracy", lambda r: _num(r["test_acc"], 3)),
            ("Val accuracy (selection)", lambda r: _num(r["val_acc"], 3)),
            ("Collapsed to one class", lambda r: "yes" if r["collapsed"] else "no"),
            ("Trial", lambda r: f"`{r['trial_id']}`")]
    for key in KEY_PARAMS:
        col = f"config/{key}"
        if col in best.columns and best[col].notna().any():
            rows.append((key, lambda r, c=col: _value(r.get(c))))
    lines = ["| | " + " | ".join(best["arch"]) + " |", "|---" * (len(best) + 1) + "|"]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(r) for _, r in best.iterrows()) + " |")
    return "\n".join(lines) + "\n"


def freeze_section(t: pd.DataFrame) -> str:
    """Frozen vs fine-tuned embeddings per architecture: counts, best val/test accuracy and its cost."""
    col = "config/freeze_embeddings"
    done = t[t["status"].isin(pareto.FINISHED) & t["val_acc"].notna()]
    lines = ["| arch | embeddings | finished trials | best val acc | its test acc | its training time |"
             " its params trainable |", "|---|---|---|---|---|---|---|"]
    for arch in sorted(t["arch"].unique()):
        mine = done[done["arch"] == arch]
        # a trial whose config lacks the key trained with the trainer's default
        flags = (mine[col].map(_as_bool) if col in mine.columns
                 else pd.Series(None, index=mine.index, dtype=object)).fillna(FREEZE_DEFAULT)
        for value, name in ((True, "frozen"), (False, "fine-tuned")):
            side = mine[flags == value] if len(mine) else mine
            if side.empty:
                lines.append(f"| {arch} | {name} | 0 | not sampled | | | |")
                continue
            b = side.sort_values("val_acc", ascending=False).iloc[0]
            lines.append(f"| {arch} | {name} | {len(side)} | {_num(b['val_acc'], 3)} | "
                         f"{_num(b['test_acc'], 3)} | {_duration(b['train_time_s'])} | "
                         f"{_count(b['params_trainable'])} |")
    return "\n".join(lines) + "\n"


def summary_markdown(t: pd.DataFrame, fronts: dict[str, list[str]], diagnosis: Path | None,
                     out_dir: Path) -> str:
    counts = t["status"].value_counts()
    status = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
    md = ["# Study report", "",
          f"Trials: {len(t)} ({status}). Only finished trials (TERMINATED) with metrics enter the "
          "table and the fronts; the study may still be running.", "",
          *([f"**{int(t['collapsed'].sum())} trials collapsed to one class** (see Collapsed trials "
             "below).", ""] if t["collapsed"].any() else []),
          "Accuracy is **selected on validation** (`val_acc`: best trial per architecture, Pareto "
          "fronts); **test accuracy** (`test_acc`) is reported beside it.", "",
          "## Best trial per architecture (the seed's table, measured)", "", seed_table(t),
          "Samples/s is training throughput; cost `train_s_per_1k_samples` = 1000 / samples_per_s.", "",
          "## Freezing vs fine-tuning the embeddings", "", freeze_section(t),
          "## Pareto fronts (higher val_acc, lower cost)", ""]
    for cost, ids in fronts.items():
        md += [f"### {cost}: {pareto.COSTS.get(cost, (cost, ''))[1]}", "",
               f"![{cost}](pareto_{cost}.png)", ""]
        md += [f"- {line}" for line in pareto.describe_front(t, cost)] + [""]
    md += ["Interactive version (hover for hyperparameters): [pareto.html](pareto.html).", ""]
    md += _failed_section(t) + _collapsed_section(t, diagnosis, out_dir)
    return "\n".join(md)


def _failed_section(t: pd.DataFrame) -> list[str]:
    err = t[t["status"] == "ERROR"]
    md = ["## Failed trials", ""]
    if err.empty:
        return md + ["None.", ""]
    for _, r in err.iterrows():
        note = f": {str(r['error']).splitlines()[0][:200]}" if "error" in r and pd.notna(r["error"]) else ""
        md.append(f"- `{r['trial_id']}` ({r['arch']}), last epoch {_num(r['epochs'], 0)}{note}")
    return md + [""]


def _collapsed_section(t: pd.DataFrame, diagnosis: Path | None, out_dir: Path) -> list[str]:
    bad = t[t["collapsed"]]
    md = ["## Collapsed trials", "",
          f"A trial is collapsed when at least {COLLAPSE_SHARE:.0%} of its test predictions fall in one "
          f"class and its test accuracy is within {COLLAPSE_MARGIN} of chance (1 / number of classes).", ""]
    if bad.empty:
        md.append("None.")
    for _, r in bad.iterrows():
        md.append(f"- `{r['trial_id']}` ({r['arch']}, {r['status']}): test acc {_num(r['test_acc'], 3)}, "
                  f"majority share {_num(r['majority_share'], 3)}, chance {_num(1 / r['num_classes'], 3)}")
    md.append("")
    if diagnosis is not None and diagnosis.exists():
        rel = Path(diagnosis).resolve()
        try:
            rel = rel.relative_to(out_dir.resolve())
        except ValueError:
            pass
        md.append(f"Why LSTMs collapse and what fixes it: see [diagnosis.md]({rel}).")
    else:
        md.append("No diagnosis found; run `python -m study diagnose --store STORE --out "
                  f"{out_dir}` to write `diagnosis.md` (probes and one-factor ablations).")
    return md + [""]


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
    files["summary.md"] = out_dir / "summary.md"
    files["summary.md"].write_text(summary_markdown(t, fronts, diagnosis, out_dir))
    return files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-path", required=True, help="Ray Tune storage path of the study")
    parser.add_argument("--name", required=True, help="experiment name under the storage path")
    parser.add_argument("--out", required=True, help="folder for the report files")
    parser.add_argument("--diagnosis", default=None,
                        help="diagnosis.md to link (default: OUT/diagnosis.md when present)")


def main(args: argparse.Namespace) -> int:
    """``python -m study report`` (registered in ``study/__main__.py``)."""
    from study import launch   # Ray is imported only by the launcher

    try:
        frame = launch.trials_frame(args.storage_path, args.name)
    except launch.LaunchError as exc:
        raise UsageError(str(exc)) from None
    files = write_report(frame, args.out, args.diagnosis)
    counts = ", ".join(f"{k} {v}" for k, v in frame["status"].value_counts().items()) if len(frame) else ""
    print(f"report of {len(frame)} trials ({counts}) -> {args.out}: {', '.join(sorted(files))}")
    return 0


# ---- cell formatting -------------------------------------------------------------------------------

def _epochs(r) -> str:
    run, budget = r.get("epochs"), pd.to_numeric(r.get("config/epochs"), errors="coerce")
    if pd.isna(run):
        return "n/a"
    return f"{run:.0f} of {budget:.0f}" if pd.notna(budget) and budget != run else f"{run:.0f}"


def _duration(s) -> str:
    if s is None or pd.isna(s):
        return "n/a"
    s = float(s)
    if s < 60:
        return f"{s:.3g} s"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d} ({s:.0f} s)"


def _count(n) -> str:
    if n is None or pd.isna(n):
        return "n/a"
    n = float(n)
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


def _num(x, digits) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{float(x):.{digits}f}"


def _value(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        return ",".join(map(str, v))
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    if isinstance(v, (float, np.floating)) and float(v).is_integer() and not isinstance(v, bool):
        return str(int(v))      # NaN in a column makes pandas store its integers as floats
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def _as_bool(v):
    if isinstance(v, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(v.strip().lower())
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v)


if __name__ == "__main__":
    from study.__main__ import main as cli

    sys.exit(cli(["report", *sys.argv[1:]]))
