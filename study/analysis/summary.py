"""summary.md: the study in words and tables, from the trials table and its fronts.

    from study.analysis.summary import summary_markdown
    text = summary_markdown(table, fronts, diagnosis_path, out_dir)

Sections: the original study's comparison table regenerated from each architecture's best trial,
embedding kind x frozen/fine-tuned per architecture, what each network buys over the linear baseline, the
Pareto fronts in words with their hypervolumes, noise, which hyperparameters matter (``importance.py``),
failed and collapsed trials.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd

from study.analysis import format as fmt
from study.analysis import hypervolume, pareto
from study.analysis.table import best_per_arch
from study.train import metrics
from study.train.config import NETWORK_ARCHS, TrainConfig

FREEZE_DEFAULT = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "freeze_embeddings")
# Hyperparameters shown under each architecture's best trial (those the trial has).
KEY_PARAMS = ["batch_size", "lr", "optimizer", "embedding", "freeze_embeddings", "max_len", "padding", "widths",
              "filters", "hidden_size", "num_layers", "bidirectional", "readout", "bigram_buckets",
              "dropout", "faithful", "C", "ngram_max", "min_df", "sublinear_tf", "nb_scaling"]
BASELINE = "linear"  # the architecture the networks are measured against
Z95 = 1.959964  # two-sided 95% normal quantile


def _epochs(r) -> str:
    run, budget = r.get("epochs"), pd.to_numeric(r.get("config/epochs"), errors="coerce")
    if pd.isna(run):
        return "n/a"
    if r.get("arch") == BASELINE:  # one fit, whatever epochs `study run --max-epochs` put in its config
        return "1 (one fit)"
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


def embedding_kinds(t: pd.DataFrame) -> pd.Series:
    """Each trial's embedding kind: its config's ``embedding``, else the kind its trial reported loading
    (``embedding_kind``), else "default" (a study from before the key existed)."""
    chosen = t["config/embedding"] if "config/embedding" in t.columns else pd.Series(None, index=t.index)
    loaded = t["embedding_kind"] if "embedding_kind" in t.columns else pd.Series(None, index=t.index)
    chosen = chosen.where(chosen.notna() & (chosen.astype(str) != ""), loaded)
    return chosen.where(chosen.notna() & (chosen.astype(str) != ""), "default").astype(str)


def freeze_section(t: pd.DataFrame) -> str:
    """Embedding kind x frozen/fine-tuned, per architecture: trials tried and how they ended, then the best
    val/test accuracy among those with a result and its cost. "not sampled" only when no trial drew it."""
    col = "config/freeze_embeddings"
    # a trial whose config lacks the key trained with the trainer's default
    flags = (t[col].map(fmt.as_bool) if col in t.columns
             else pd.Series(None, index=t.index, dtype=object)).fillna(FREEZE_DEFAULT)
    kinds = embedding_kinds(t)
    scored = t["status"].isin(pareto.FINISHED) & t["val_acc"].notna()
    lines = ["| arch | embedding | weights | trials: finished / early-stopped / other | best val acc "
             "| its test acc | its training time | its params trainable |", "|---|---|---|---|---|---|---|---|"]
    for arch in sorted(a for a in t["arch"].unique() if a != BASELINE):  # the baseline has no embeddings
        mine = t["arch"] == arch
        for kind in sorted(kinds[mine].unique()):
            for value, name in ((True, "frozen"), (False, "fine-tuned")):
                side = t[mine & (kinds == kind) & (flags == value)]
                if side.empty:
                    lines.append(f"| {arch} | {kind} | {name} | 0 | not sampled | | | |")
                    continue
                reasons = side["stop_reason"] if "stop_reason" in side else pd.Series("finished", index=side.index)
                ended = (f"{(reasons == 'finished').sum()} / {(reasons == 'early-stopped').sum()} / "
                         f"{(~reasons.isin(['finished', 'early-stopped'])).sum()}")
                with_result = side[scored[side.index]]
                if with_result.empty:
                    lines.append(f"| {arch} | {kind} | {name} | {ended} | no result yet | | | |")
                    continue
                b = with_result.sort_values("val_acc", ascending=False).iloc[0]
                lines.append(f"| {arch} | {kind} | {name} | {ended} | {fmt.fixed(b['val_acc'], 3)} | "
                             f"{fmt.fixed(b['test_acc'], 3)} | {fmt.duration(b['train_time_s'])} | "
                             f"{fmt.count(b['params_trainable'])} |")
    return "\n".join(lines) + "\n"


def accuracy_gap(acc: float, n: float, base_acc: float, base_n: float) -> tuple[float, float, float]:
    """Difference of two test accuracies with a 95% interval: normal approximation, the two treated as
    independent samples of ``n`` and ``base_n`` reviews. Both are scored on the same reviews, whose errors
    are correlated, so this interval is wider than a paired one (conservative)."""
    gap = acc - base_acc
    if not (n > 0 and base_n > 0):
        return gap, math.nan, math.nan
    half = Z95 * math.sqrt(acc * (1 - acc) / n + base_acc * (1 - base_acc) / base_n)
    return gap, gap - half, gap + half


def _test_reviews(r) -> float:
    """How many test reviews a trial was scored on: the sum of its prediction histogram."""
    hist = r.get("pred_hist")
    return float(sum(hist)) if isinstance(hist, (list, tuple)) or hasattr(hist, "__array__") else math.nan


def _multiple(value, base) -> str:
    value, base = pd.to_numeric(value, errors="coerce"), pd.to_numeric(base, errors="coerce")
    if not (pd.notna(value) and pd.notna(base) and base > 0):
        return fmt.MISSING
    r = value / base
    return fmt.ratio(r) if r >= 0.1 else f"{r:.2g}x"  # far cheaper than the baseline: keep two digits


def baseline_section(t: pd.DataFrame) -> str:
    """For each network architecture's best trial: test accuracy gained over the best linear trial (with
    its 95% interval) and the multiple of the linear trial's cost it pays for it."""
    best = best_per_arch(t).set_index("arch", drop=False)
    if BASELINE not in best.index:
        return (f"_No finished `{BASELINE}` trial: add `--space search_spaces/{BASELINE}.yaml` to the study "
                "to measure what the networks buy over TF-IDF n-grams + logistic regression._\n")
    base = best.loc[BASELINE]
    base_n = _test_reviews(base)
    lines = [f"Baseline: the best `{BASELINE}` trial `{base['trial_id']}`: val acc {fmt.fixed(base['val_acc'], 3)}, "
             f"test acc {fmt.fixed(base['test_acc'], 3)}, {fmt.duration(base['train_time_s'])} of training, "
             f"{fmt.count(base['params_no_embedding'])} coefficients.", "",
             "| arch | test acc | gain over linear (points) | 95% interval | training time | x linear's |"
             " params w/o embeddings | x linear's |", "|---|---|---|---|---|---|---|---|"]
    for arch in [a for a in NETWORK_ARCHS if a in best.index] + \
            sorted(set(best.index) - set(NETWORK_ARCHS) - {BASELINE}):
        r = best.loc[arch]
        gap, low, high = accuracy_gap(r["test_acc"], _test_reviews(r), base["test_acc"], base_n)
        interval = fmt.MISSING if math.isnan(low) else (
            f"[{100 * low:+.1f}, {100 * high:+.1f}] ({'within' if low <= 0 <= high else 'beyond'} the noise)")
        lines.append(f"| {arch} | {fmt.fixed(r['test_acc'], 3)} | {100 * gap:+.1f} | "
                     f"{interval} | {fmt.duration(r['train_time_s'])} | "
                     f"{_multiple(r['train_time_s'], base['train_time_s'])} | "
                     f"{fmt.count(r['params_no_embedding'])} | "
                     f"{_multiple(r['params_no_embedding'], base['params_no_embedding'])} |")
    lines += ["", "Each architecture's best trial by validation accuracy. The interval is the normal "
              "approximation for the difference of two test accuracies treated as independent (both models "
              "are scored on the same reviews, so it is conservative). The networks' parameters leave out "
              "the embedding table; the linear model's are its coefficients."]
    return "\n".join(lines) + "\n"


def noise_section(runs: pd.DataFrame, configs: pd.DataFrame, tests: list[dict], splits) -> list[str]:
    """Which differences are real: intervals, the constant predictor, paired tests in words, and what the
    repeats cost. ``runs``: one row per run; ``configs``, ``tests``, ``splits``: study.analysis.noise."""
    from study.analysis import noise

    md = ["## Noise: which differences are real", "",
          "Accuracies are means over each configuration's runs (a search trial and its repeats with other "
          "seeds), with 95% intervals (+-, half-widths) joining review sampling (Wilson, at the split's size:"
          f" {fmt.fixed(splits.n_val, 0)} validation, {fmt.fixed(splits.n_test, 0)} test reviews) and seed "
          "variance (Student's t, with several runs).", "",
          f"The {pareto.CONSTANT}: val {fmt.points(splits.constant_val)}, test "
          f"{fmt.points(splits.constant_test)} at zero cost: the anchor of every front; "
          f"{int(configs['below_constant'].sum())} configurations at or below it are on no front.", ""]
    spent = runs[["train_time_s", "eval_time_s"]].apply(pd.to_numeric, errors="coerce").fillna(0).sum(axis=1)
    repeat = runs["repeat_of"].notna() if "repeat_of" in runs.columns else pd.Series(False, index=runs.index)
    if repeat.any() and spent.sum() > 0:
        md += [f"Repeats: {int(repeat.sum())} runs of {runs.loc[repeat, 'repeat_of'].nunique()} configurations; "
               f"they trained and evaluated for {fmt.duration(spent[repeat].sum())}, "
               f"{100 * spent[repeat].sum() / spent.sum():.0f}% of the study's {fmt.duration(spent.sum())}.", ""]
    else:
        md += ["No repeats: every interval is review sampling alone (`study run --repeats R` adds seeds).", ""]
    ids = list(dict.fromkeys(i for x in tests for i in (x["a"], x["b"])))
    rows = configs.set_index(configs["trial_id"].astype(str))
    if ids:
        md += ["| configuration | arch | runs | val acc | test acc |", "|---|---|---|---|---|"]
        md += [f"| `{i}` | {rows.at[i, 'arch']} | {rows.at[i, 'n_runs']} | "
               f"{fmt.points(rows.at[i, 'val_acc'])} +- {fmt.points(rows.at[i, 'val_acc_ci95'])} | "
               f"{fmt.points(rows.at[i, 'test_acc'])} +- {fmt.points(rows.at[i, 'test_acc_ci95'])} |" for i in ids]
        md.append("")
    md += ["Paired tests on the same test reviews (paired bootstrap of the accuracy difference; the more "
           "accurate on validation first):", ""]
    for x in tests or []:
        who = f"{x['arch_a']} `{x['a']}` vs {x['arch_b']} `{x['b']}`"
        if x["p"] is None:
            md.append(f"- {who}: no per-review test predictions for both, no paired test")
            continue
        verdict = "within noise" if noise.within_noise(x["p"]) else "distinguishable from noise"
        md.append(f"- {who}: {100 * x['diff']:+.1f} points on test, {verdict} ({noise.p_text(x['p'])}; 95% "
                  f"interval {100 * x['lo']:+.1f} to {100 * x['hi']:+.1f}; {x['n']} reviews; "
                  f"{x['runs_a']} vs {x['runs_b']} runs)")
    return md + ([""] if tests else ["- no two finished configurations to compare", ""])


def importance_section(result) -> list[str]:
    """Which searched hyperparameters matter for accuracy and cost (``importance.compute``'s result)."""
    if result is None:
        return []
    from study.analysis import importance

    return ["## Which hyperparameters matter", "", *importance.markdown(result)]


def summary_markdown(t: pd.DataFrame, fronts: dict[str, list[str]], diagnosis: Path | None,
                     out_dir: Path, noise: list[str] | None = None, importance=None,
                     answer: list[str] | None = None) -> str:
    counts = t["status"].value_counts()
    status = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
    ended = ", ".join(f"{k} {v}" for k, v in t["stop_reason"].value_counts().items())
    md = ["# Study report", "",
          f"Trials: {len(t)} ({status}; how they ended: {ended or 'none'}). Only finished trials (TERMINATED) with metrics enter the "
          "table and the fronts; the study may still be running.", "", *_stopped_lines(t),
          *([f"**{int(t['collapsed'].sum())} trials collapsed to one class** (see Collapsed trials "
             "below).", ""] if t["collapsed"].any() else []),
          "Accuracy is **selected on validation** (`val_acc`: best trial per architecture, Pareto "
          "fronts); **test accuracy** (`test_acc`) is reported beside it.", "", *(answer or []),
          "## Best trial per architecture (the original study's table, measured)", "", original_table(t),
          "Samples/s is training throughput; cost `train_s_per_1k_samples` = 1000 / samples_per_s.", "",
          "## Embedding kind x frozen vs fine-tuned", "",
          "Best val acc among the cell's trials with a result (an early-stopped trial's is its last epoch's). "
          "Keys a search space marks `compare:` get their values in a balanced order, so a cell of them reads "
          "\"not sampled\" only when the study ended before that order reached it.",
          "", freeze_section(t),
          "## What the networks buy over the linear baseline", "", baseline_section(t),
          "## Pareto fronts (higher val_acc, lower cost)", ""]
    for cost, ids in fronts.items():
        md += [f"### {cost}: {pareto.COSTS.get(cost, (cost, ''))[1]}", "",
               f"![{cost}](pareto_{cost}.png)", ""]
        md += [f"- {line}" for line in pareto.describe_front(t, cost)] + [""]
        md += [hypervolume.describe(hypervolume.front_hypervolume(t, cost), cost), ""]
    md += ["Interactive version (hover for hyperparameters): [pareto.html](pareto.html).", ""]
    md += noise or []
    md += importance_section(importance)
    md += _failed_section(t) + _collapsed_section(t, diagnosis, out_dir)
    return "\n".join(md)


def _stopped_lines(t: pd.DataFrame) -> list[str]:
    """Which trials ended short, and why: ASHA's early stop, or the time budget (resume trains those)."""
    by = t["stop_reason"]  # study.analysis.table.stop_reasons: the one rule for how a trial ended
    asha = t.loc[by == "early-stopped", "trial_id"].tolist()
    cut = t.loc[t["status"] == "BUDGET_CUT", "trial_id"].tolist()
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
