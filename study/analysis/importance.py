"""Which searched hyperparameters matter, per architecture, for accuracy and for cost (Optuna's fANOVA).

    from study.analysis import importance
    result = importance.compute(table)               # table: study.analysis.table.trials_table(...)
    importance.write_plot(result, "results/demo")   # importance.png / .svg
    importance.markdown(result)                     # the table in summary.md, as lines

For each architecture, the finished trials (``pareto.FINISHED``) become an in-memory Optuna study per
target: ``val_acc`` (what the search maximises) and two costs, ``train_s_per_1k_samples`` (training
seconds per 1,000 samples, i.e. inverse throughput, which does not depend on how many epochs ASHA let a
trial run) and ``params_no_embedding`` (model size). A hyperparameter is *searched* when it takes more
than one value among the architecture's finished trials; fixed keys, the seed and ``epochs`` are left out.

Evaluator: ``optuna.importance.FanovaImportanceEvaluator`` (seeded). fANOVA fits a random forest to
(hyperparameters -> target) and reports the share of the target's variance each hyperparameter explains
on its own over the whole searched space, which is the question asked here ("does freezing the
embeddings move accuracy? does batch size move the cost?"), for a maximised and a minimised target alike.
PED-ANOVA (``PedAnovaImportanceEvaluator``) instead asks which values separate the top 10% of trials
from the rest; Optuna's own guidance is at least 5 trials in that top 10%, about 50 trials per
architecture, more than a study here usually runs. Importances are normalised to sum to 1 per target.

A forest fitted on a handful of points fits noise: with fewer than ``TRUSTED_TRIALS`` finished trials of
an architecture the report says so; below ``MIN_TRIALS`` nothing is computed. Optuna (and scikit-learn,
which its fANOVA uses) is imported only when there is something to compute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from study.analysis import pareto

TARGETS = {  # column -> what it is, as the table header says it
    "val_acc": "val_acc",
    "train_s_per_1k_samples": "training s / 1k samples",
    "params_no_embedding": "params w/o embeddings",
}
MIN_TRIALS = 3        # fewer finished trials: no importance at all
TRUSTED_TRIALS = 20   # fewer: computed, shown, and flagged as a hint only
NOT_SEARCHED = {"arch", "seed", "epochs"}   # set by the launcher, never a knob of the search
EVALUATOR = "Optuna's fANOVA, `FanovaImportanceEvaluator(seed=0)`"


@dataclass
class Importance:
    """``values``: one row per (arch, param) with one column per target (NaN: target did not vary).
    ``trials``: finished trials per architecture; ``skipped``: arch -> why nothing was computed."""
    values: pd.DataFrame
    trials: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def searched(rows: pd.DataFrame) -> list[str]:
    """``config/<key>`` columns whose value varies among ``rows`` (one architecture's trials)."""
    out = []
    for col in sorted(c for c in rows.columns if str(c).startswith("config/")):
        if col.split("/", 1)[1] in NOT_SEARCHED:
            continue
        values = rows[col].map(lambda v: repr(v) if isinstance(v, (list, tuple)) else v).dropna()
        if values.nunique() > 1 and len(values) == len(rows):
            out.append(col)
    return out


def _distribution(values: pd.Series):
    """The Optuna distribution a column's observed values fit: numbers as a range, the rest as choices."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    numeric = values.map(lambda v: isinstance(v, (int, float, np.integer, np.floating))
                         and not isinstance(v, (bool, np.bool_))).all()
    if not numeric:
        return CategoricalDistribution(sorted({_plain(v) for v in values}, key=repr))
    low, high = float(values.min()), float(values.max())
    log = low > 0 and high / low >= 10     # lr, weight decay, sizes: searched on a log scale
    if all(float(v).is_integer() for v in values):
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(low, high, log=log)


def _plain(v):
    """A JSON-plain value Optuna accepts as a categorical choice (lists become their comma string)."""
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return v.item() if isinstance(v, np.generic) else v


def _in(dist, v):
    """``v`` as a value of ``dist``: Optuna checks the type (an int in a float range is refused)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    v = _plain(v)
    return float(v) if isinstance(dist, FloatDistribution) else int(v) if isinstance(dist, IntDistribution) else v


def _one(rows: pd.DataFrame, params: list[str], target: str) -> dict[str, float]:
    """fANOVA importances of ``params`` for ``target`` over ``rows``; {} when the target is constant."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    y = pd.to_numeric(rows[target], errors="coerce")
    ok = y.notna() & np.isfinite(y)
    rows, y = rows[ok], y[ok]
    if len(rows) < MIN_TRIALS or y.nunique() < 2:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {c.split("/", 1)[1]: _distribution(rows[c]) for c in params}
    study = optuna.create_study(direction="maximize" if target == pareto.ACCURACY else "minimize")
    for (_, r), value in zip(rows.iterrows(), y):
        params_of = {k: _in(d, r[f"config/{k}"]) for k, d in dists.items()}
        study.add_trial(optuna.trial.create_trial(params=params_of, distributions=dists, value=float(value)))
    return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), normalize=True)


def compute(t: pd.DataFrame) -> Importance:
    """Importance of each searched hyperparameter for each target, per architecture."""
    done = t[t["status"].isin(pareto.FINISHED)]
    rows, counts, skipped = [], {}, {}
    for arch in sorted(t["arch"].astype(str).unique()):
        mine = done[done["arch"] == arch]
        counts[arch] = len(mine)
        params = searched(mine)
        if len(mine) < MIN_TRIALS:
            skipped[arch] = f"{len(mine)} finished trial{'s' * (len(mine) != 1)}, fewer than {MIN_TRIALS}"
            continue
        if not params:
            skipped[arch] = "no hyperparameter varies among its finished trials"
            continue
        per_target = {target: _one(mine, params, target) for target in TARGETS if target in mine}
        for col in params:
            key = col.split("/", 1)[1]
            rows.append({"arch": arch, "param": key,
                         **{tg: imp.get(key, np.nan) if imp else np.nan for tg, imp in per_target.items()}})
    values = pd.DataFrame(rows, columns=["arch", "param", *TARGETS])
    if len(values):   # most important for accuracy first within each architecture
        values = values.sort_values(["arch", "val_acc"], ascending=[True, False], kind="stable")
    return Importance(values.reset_index(drop=True), counts, skipped)


def markdown(result: Importance) -> list[str]:
    """The section body for summary.md: the evaluator, one table, the trust sentence per architecture."""
    md = [f"Share of each target's variance that one hyperparameter explains alone ({EVALUATOR}: "
          "each column sums to 1 per architecture; `-`: the target did not vary). Only hyperparameters "
          "that took more than one value among an architecture's finished trials appear.", ""]
    if result.values.empty:
        md.append("_Not computed: " + "; ".join(f"{a}: {why}" for a, why in result.skipped.items()) + "._")
        return md + [""]
    md += ["| arch | hyperparameter | " + " | ".join(TARGETS.values()) + " |",
           "|---|---|" + "---:|" * len(TARGETS)]
    for _, r in result.values.iterrows():
        cells = ["-" if pd.isna(r[tg]) else f"{r[tg]:.2f}" for tg in TARGETS]
        md.append(f"| {r['arch']} | {r['param']} | " + " | ".join(cells) + " |")
    md.append("")
    for arch, n in result.trials.items():
        if arch in result.skipped:
            md.append(f"- {arch}: not computed ({result.skipped[arch]}).")
        elif n < TRUSTED_TRIALS:
            md.append(f"- {arch}: only {n} finished trials, too few to trust (a forest fitted on fewer "
                      f"than {TRUSTED_TRIALS} points fits noise): read the ranking as a hint, not a finding.")
    return md + ["", "![importance](importance.png)", ""]


def write_plot(result: Importance, out_dir) -> dict[str, Path]:
    """``importance.png/.svg``: one panel per architecture, one bar per hyperparameter and target.
    Returns {} (and writes nothing) when no importance was computed."""
    if result.values.empty:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(dict.fromkeys(result.values["arch"]))
    sizes = [int((result.values["arch"] == a).sum()) for a in archs]
    fig, axes = plt.subplots(len(archs), 1, figsize=(9, 1.2 + 0.55 * sum(sizes) + 0.6 * len(archs)),
                             gridspec_kw={"height_ratios": sizes}, squeeze=False, dpi=120)
    width = 0.8 / len(TARGETS)
    for ax, arch in zip(axes[:, 0], archs):
        mine = result.values[result.values["arch"] == arch].iloc[::-1]   # most important on top
        y = np.arange(len(mine))
        for k, (target, label) in enumerate(TARGETS.items()):
            ax.barh(y + (1 - k) * width, mine[target].fillna(0), height=width, label=label)
        ax.set_yticks(y, mine["param"])
        ax.set_xlim(0, 1)
        n = result.trials.get(arch, 0)
        ax.set_title(f"{arch}: {n} finished trials" + (" (too few to trust)" if n < TRUSTED_TRIALS else ""),
                     fontsize=11, loc="left")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0, 0].legend(loc="lower right", fontsize=9)
    axes[-1, 0].set_xlabel("fANOVA importance (share of the target's variance)")
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"importance.png": out_dir / "importance.png", "importance.svg": out_dir / "importance.svg"}
    for path in files.values():
        fig.savefig(path)
    plt.close(fig)
    return files
