"""The trials table: one row per trial, numbers typed, derived costs and the collapse flag added.

    from study.analysis.table import trials_table, best_per_arch
    t = trials_table(results.trials_frame(path))
    best = best_per_arch(t)            # each architecture's best finished trial by val_acc

``METRICS`` (+ ``OPTIONAL_METRICS``) are the numeric metric columns that the report, the page and the
tables use; the collapse rule is ``study.train.metrics.is_collapsed`` (the same rule the diagnosis
applies). ``repeat_of`` names, for a repeat, the search trial whose configuration it trains again.
``stop_reason`` says how each trial ended (``STOP_REASONS``; the searcher tells Optuna the same words).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from study import experiment
from study.analysis import format as fmt
from study.analysis import pareto
from study.train import metrics
from study.train.config import NETWORK_ARCHS

METRICS = ["val_acc", "test_acc", "macro_f1", "majority_share", "train_time_s", "epoch_time_s",
           "samples_per_s", "params_total", "params_trainable", "params_no_embedding",
           "max_params_per_layer", "epochs", "peak_rss_mb", "train_loss", "val_loss"]
# Metrics that studies run before they existed lack (n/a there, not an error); the key tuples are the
# trainer's, study.train.metrics (only numpy: no torch comes with it).
OPTIONAL_METRICS = [k for k in (*metrics.COST_KEYS, *metrics.RUN_KEYS) if k not in METRICS]


# How a trial ended. "early-stopped" comes from the scheduler's mark (``early_stopped``, in every result
# of a study; true on the one ASHA stopped at: study.search.scheduler); a finished-status trial short of
# its epochs without that mark was cut by the time budget (status BUDGET_CUT in studies that keep cut
# trials resumable, TERMINATED in older ones) or an interrupted study; in a study run
# before the mark existed the two cannot be told apart: "stopped-short".
MARK = "early_stopped"
STOP_REASONS = ("finished", "early-stopped", "budget-cut", "never-trained", "failed", "running",
                "stopped-short")


def stop_reasons(t: pd.DataFrame) -> pd.Series:
    """One of ``STOP_REASONS`` per trial, from status, epochs, planned epochs and the scheduler's mark."""
    has_mark = MARK in t.columns
    marked = t[MARK].map(fmt.as_bool) if has_mark else pd.Series(None, index=t.index, dtype=object)
    planned = pd.to_numeric(t.get("config/epochs", pd.Series(np.nan, index=t.index)), errors="coerce")
    if "arch" in t.columns:  # the linear baseline is one fit, whatever epochs `--max-epochs` wrote in its config
        planned = planned.where(t["arch"].isin(NETWORK_ARCHS) | t["arch"].isna(), 1)
    out = []
    for i, r in t.iterrows():
        epochs = r["epochs"]
        if r["status"] == "ERROR":
            out.append("failed")
        elif r["status"] == experiment.BUDGET_CUT:  # interrupted by --time-budget-s; resume trains it
            out.append("budget-cut" if epochs > 0 else "never-trained")
        elif not (epochs > 0):
            out.append("never-trained" if r["status"] in pareto.FINISHED else "running")
        elif r["status"] not in pareto.FINISHED:
            out.append("running")
        elif pd.notna(marked[i]) and bool(marked[i]) and not epochs >= planned[i]:  # a one fit is never cut
            out.append("early-stopped")  # (the mark is an np.bool_ when the column is all booleans)
        elif pd.isna(planned[i]) or epochs >= planned[i]:
            out.append("finished")
        else:
            out.append("budget-cut" if has_mark else "stopped-short")
    return pd.Series(out, index=t.index, dtype=object)


def trials_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise ``results.trials_frame``'s output: numbers numeric, derived cost and collapse columns
    added. A metric missing from trials that reported results is an error, not "n/a" in the report (a
    renamed metric must fail loudly); a study with no result yet gets empty metric columns."""
    t = frame.copy().reset_index(drop=True)
    for col in ("trial_id", "arch", "status"):
        if col not in t.columns:
            raise ValueError(f"trials table lacks the column {col!r}")
    reported = "epochs" in t.columns and bool((pd.to_numeric(t["epochs"], errors="coerce") > 0).any())
    for col in METRICS:
        if col not in t.columns:
            if reported:
                raise ValueError(f"trials reported results but none has the metric {col!r} (renamed?)")
            t[col] = np.nan
    for col in METRICS + OPTIONAL_METRICS:
        t[col] = pd.to_numeric(t[col], errors="coerce").astype(float) if col in t.columns else np.nan
    if "repeat_of" not in t.columns:
        t["repeat_of"] = None
    t["trial_id"] = t["trial_id"].astype(str)
    t["arch"] = t["arch"].fillna("?").astype(str)
    t["status"] = t["status"].fillna("UNKNOWN").astype(str)
    t = pareto.with_derived_costs(t)
    hist = t["pred_hist"] if "pred_hist" in t.columns else pd.Series(None, index=t.index, dtype=object)
    t["num_classes"] = [len(h) if isinstance(h, (list, tuple, np.ndarray)) and len(h) else np.nan
                        for h in hist]
    t["collapsed"] = collapsed_mask(t)
    t["stop_reason"] = stop_reasons(t)
    return t


def collapsed_mask(t: pd.DataFrame) -> pd.Series:
    """True where a trial predicts (almost) one class at (about) chance accuracy; False when unknown."""
    out = metrics.is_collapsed(pd.to_numeric(t["test_acc"], errors="coerce"),
                               pd.to_numeric(t["majority_share"], errors="coerce"),
                               pd.to_numeric(t["num_classes"], errors="coerce"))
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
    """Each architecture's best finished trial by val_acc (ties: lower training time). Selection is on
    validation only; on a configurations frame (``noise.configurations``) val_acc is the runs' mean."""
    done = t[t["status"].isin(pareto.FINISHED) & t["val_acc"].notna()]
    done = done.sort_values(["val_acc", "train_time_s"], ascending=[False, True], kind="stable")
    return done.groupby("arch", sort=True).head(1).sort_values("arch")
