"""summary.md: the study in words and tables, from the trials table and its fronts.

    from study.analysis.summary import summary_markdown
    text = summary_markdown(table, fronts, diagnosis_path, out_dir)

Sections: the original study's comparison table regenerated from each architecture's best trial, frozen
vs fine-tuned embeddings per architecture, the Pareto fronts in words, failed and collapsed trials.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from study.analysis import format as fmt
from study.analysis import pareto
from study.analysis.table import best_per_arch
from study.train import metrics
from study.train.config import TrainConfig

FREEZE_DEFAULT = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "freeze_embeddings")
# Hyperparameters shown under each architecture's best trial (those the trial has).
KEY_PARAMS = ["batch_size", "lr", "optimizer", "freeze_embeddings", "max_len", "padding", "widths",
              "filters", "hidden_size", "num_layers", "bidirectional", "readout", "bigram_buckets",
              "dropout", "faithful"]


def _epochs(r) -> str:
    run, budget = r.get("epochs"), pd.to_numeric(r.get("config/epochs"), errors="coerce")
    if pd.isna(run):
        return "n/a"
    return f"{run:.0f} of {budget:.0f}" if pd.notna(budget) and budget != run else f"{run:.0f}"


def original_table(t: pd.DataFrame) -> str:
    """The original study's comparison table, one column per architecture's best trial."""
    best = best_per_arch(t)
    if best.empty:
        return "_No finished trial with metrics yet._\n"
    rows = [("Training time", lambda r: fmt.duration(r["train_time_s"])),
            ("Epoch time", lambda r: fmt.duration(r["epoch_time_s"])),
            ("Num epochs", _epochs),
            ("Samples/s (training)", lambda r: fmt.fixed(r["samples_per_s"], 1)),
            ("Max params per layer", lambda r: fmt.count(r["max_params_per_layer"])),
            ("Total params", lambda r: fmt.count(r["params_total"])),
            ("Params without embeddings", lambda r: fmt.count(r["params_no_embedding"])),
            ("Test accuracy", lambda r: fmt.fixed(r["test_acc"], 3)),
            ("Val accuracy (selection)", lambda r: fmt.fixed(r["val_acc"], 3)),
            ("Collapsed to one class", lambda r: "yes" if r["collapsed"] else "no"),
            ("Trial", lambda r: f"`{r['trial_id']}`")]
    for key in KEY_PARAMS:
        col = f"config/{key}"
        if col in best.columns and best[col].notna().any():
            rows.append((key, lambda r, c=col: fmt.value(r.get(c))))
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
        flags = (mine[col].map(fmt.as_bool) if col in mine.columns
                 else pd.Series(None, index=mine.index, dtype=object)).fillna(FREEZE_DEFAULT)
        for value, name in ((True, "frozen"), (False, "fine-tuned")):
            side = mine[flags == value] if len(mine) else mine
            if side.empty:
                lines.append(f"| {arch} | {name} | 0 | not sampled | | | |")
                continue
            b = side.sort_values("val_acc", ascending=False).iloc[0]
            lines.append(f"| {arch} | {name} | {len(side)} | {fmt.fixed(b['val_acc'], 3)} | "
                         f"{fmt.fixed(b['test_acc'], 3)} | {fmt.duration(b['train_time_s'])} | "
                         f"{fmt.count(b['params_trainable'])} |")
    return "\n".join(lines) + "\n"


def summary_markdown(t: pd.DataFrame, fronts: dict[str, list[str]], diagnosis: Path | None,
                     out_dir: Path) -> str:
    counts = t["status"].value_counts()
    status = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
    md = ["# Study report", "",
          f"Trials: {len(t)} ({status}). Only finished trials (TERMINATED) with metrics enter the "
          "table and the fronts; the study may still be running.", "", *_stopped_lines(t),
          *([f"**{int(t['collapsed'].sum())} trials collapsed to one class** (see Collapsed trials "
             "below).", ""] if t["collapsed"].any() else []),
          "Accuracy is **selected on validation** (`val_acc`: best trial per architecture, Pareto "
          "fronts); **test accuracy** (`test_acc`) is reported beside it.", "",
          "## Best trial per architecture (the original study's table, measured)", "", original_table(t),
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


def _stopped_lines(t: pd.DataFrame) -> list[str]:
    """Which trials ended short, and why: ASHA's early stop, or the time budget (resume trains those)."""
    by = t["stopped_by"] if "stopped_by" in t else pd.Series(None, index=t.index, dtype=object)
    asha, cut = t.loc[by == "asha", "trial_id"].tolist(), t.loc[by == "budget", "trial_id"].tolist()
    if not asha and not cut:
        return []
    return [f"Stopped early by ASHA: {len(asha)} ({', '.join(asha) or 'none'}); cut by the time budget "
            f"before finishing: {len(cut)} ({', '.join(cut) or 'none'}; `study resume` trains them).", ""]


def _failed_section(t: pd.DataFrame) -> list[str]:
    err = t[t["status"] == "ERROR"]
    md = ["## Failed trials", ""]
    if err.empty:
        return md + ["None.", ""]
    for _, r in err.iterrows():
        note = f": {str(r['error']).splitlines()[0][:200]}" if "error" in r and pd.notna(r["error"]) else ""
        md.append(f"- `{r['trial_id']}` ({r['arch']}), last epoch {fmt.fixed(r['epochs'], 0)}{note}")
    return md + [""]


def _collapsed_section(t: pd.DataFrame, diagnosis: Path | None, out_dir: Path) -> list[str]:
    bad = t[t["collapsed"]]
    md = ["## Collapsed trials", "",
          f"A trial is collapsed when at least {metrics.COLLAPSE_SHARE:.0%} of its test predictions fall in one "
          f"class and its test accuracy is within {metrics.COLLAPSE_MARGIN} of chance (1 / number of classes).", ""]
    if bad.empty:
        md.append("None.")
    for _, r in bad.iterrows():
        md.append(f"- `{r['trial_id']}` ({r['arch']}, {r['status']}): test acc {fmt.fixed(r['test_acc'], 3)}, "
                  f"majority share {fmt.fixed(r['majority_share'], 3)}, chance {fmt.fixed(1 / r['num_classes'], 3)}")
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
