"""diagnosis.md from the diagnosis's result dict (the same dict as diagnosis.json).

Every accuracy in the tables is a test accuracy at the run's best validation epoch; "best" lines choose on
validation accuracy. The interval stated for the table: the seeds' min-max, and the binomial 95% interval of
one accuracy on this many test reviews.
"""
from __future__ import annotations

import math

from study.diagnosis.plan import STEP_NOISE

SHAPE_SHORT = {"learned": "learned", "learned then collapsed": "collapsed after learning",
               "learned then fell back": "fell back after learning", "never learned": "never learned"}


def compare(rows: list[dict], ablations: list[dict]) -> dict:
    """The author's question in one sentence: the fixed LSTM against the CNN and fastText (and the best
    one-factor fix of the original study's LSTM, which still pads every review to the longest)."""
    ran = [r for r in rows if r.get("runs")]
    fixes = [a for a in ablations if a.get("runs") and a.get("kind") == "one factor"]
    parts = [f"{r['change']} {r['test_acc']:.3f} (val {r['val_acc']:.3f}) in {r['train_time_s']:.0f} s per run "
             f"({r['runs'][0]['params_no_embedding']:,} params w/o embeddings)" for r in ran]
    answer = "No comparison run finished."
    if ran:
        best = max(ran, key=lambda r: r["val_acc"])
        answer = (f"Same data, same epochs, mean of {len(best['runs'])} seeds: {'; '.join(parts)}. Best on "
                  f"validation: {best['change']}." + ("" if len(ran) == len(rows) else " (some did not run)"))
    if fixes:
        fix = max(fixes, key=lambda a: a["val_acc"])
        answer += (f" Best one-factor fix of the original LSTM (on validation): {fix['change']} "
                   f"{fix['test_acc']:.3f} in {fix['train_time_s']:.0f} s per run.")
    return {"rows": rows, "answer": answer}


def _runs_cells(c: dict) -> list[str]:
    runs = c["runs"]
    per_seed = " / ".join(f"{r['test_acc']:.3f} (e{r['best_epoch']})" for r in runs)
    last = " / ".join(f"{r['last_val_acc']:.2f}" for r in runs)
    shapes = ", ".join(SHAPE_SHORT[s] for s in c["shapes"])
    return [per_seed, f"{c['test_acc']:.3f} [{c['test_acc_min']:.3f}-{c['test_acc_max']:.3f}]", last,
            f"{c['majority_share']:.2f}", f"{c['recovered_runs']}/{len(runs)}", shapes, f"{c['train_time_s']:.0f}"]


def _row(name: str, factor: str, c: dict) -> str:
    if not c.get("runs"):
        return f"| {name} | {factor} | not run: {c.get('skipped', '-')} |" + " |" * 6
    return "| " + " | ".join([name, factor, *_runs_cells(c)]) + " |"


def _evidence(r: dict) -> list[str]:
    ev = r["evidence"]
    if not ev:
        return ["- No baseline run finished: no evidence."]
    hist, spread, pad = ev["prediction_histogram"], ev["logit_spread"], ev["readout_padding"]
    grad, loss = ev["gradient_by_position"], ev["loss_curve"]
    aucs = ", ".join(f"{run['label_auc']:.3f}" for run in r["baseline"]["runs"] if "label_auc" in run)
    md = [f"- Seed {r['baseline']['runs'][0]['seed']}, best validation epoch: predictions per class "
          f"{hist['pred_hist']}: majority share {hist['majority_share']:.2f}, entropy "
          f"{hist['pred_entropy_bits']:.3f} of {hist['max_entropy_bits']:.3f} bits.",
          f"- Logits across test inputs: std {', '.join(f'{v:.3f}' for v in spread['logit_std'])} vs mean "
          f"magnitude {', '.join(f'{v:.3f}' for v in spread['logit_mean_abs'])} (spread ratio "
          f"{spread['spread_ratio']:.3f}); std of the predicted probabilities {spread['prob_std']:.4f}; AUC of "
          f"the logits for the true class {spread.get('label_auc', float('nan')):.3f} (0.5 = unrelated to the "
          f"label; every seed: {aucs}).",
          f"- Readout: {pad['readout_on_pad_share']:.0%} of test reviews are read at a pad position, after a mean "
          f"of {pad['mean_pad_steps_when_on_pad']:.0f} pad steps ({pad['mean_pad_steps_before_readout']:.0f} over "
          f"all test reviews; mean length {pad['mean_length']:.0f}, "
          f"padded width {pad['mean_width']:.0f}, {pad['padding']}-padding, readout {pad['readout']})."]
    if "skipped" not in grad:
        md.append(f"- Gradient reaching the embedded input (mean L2 norm per step): first {grad['edge_steps']} "
                  f"steps {grad['grad_first_steps']:.2e}, last {grad['edge_steps']} real steps "
                  f"{grad['grad_last_real_steps']:.2e}, pad steps {grad['grad_pad_steps']:.2e}; embedding "
                  f"table {grad['embedding_table_grad_norm']:.2e}.")
    md.append(f"- Training loss per epoch {', '.join(f'{v:.4f}' for v in loss['train_loss'])} vs ln(K) = "
              f"{loss['ln_k']:.4f} (ratio {loss['loss_vs_ln_k']:.3f}; lowest reachable with softmax before the "
              f"loss: {loss['loss_floor']:.3f}).")
    return md


def _settings(r: dict) -> list[str]:
    s, t, bar = r["settings"], r["thresholds"], r["bar"]
    n_test = s["rows"]["test"]
    half = 1.96 * math.sqrt(0.25 / max(n_test, 1))
    reference = (f"{t['recover_fraction']:.0%} of the way from chance ({r['chance']:.3f}) to the working "
                 f"model, {bar['reference']} ({bar['reference_acc']:.3f})" if bar["reference"]
                 else "chance + 0.15 (no comparison model finished)")
    return [
        f"- Store `{s['store']}` (content hash `{s['store_hash'][:16]}`), {s['store_rows']:,} rows, "
        f"{s['num_classes']} classes, {s['vector_size']}-d word2vec; every run used train/valid/test "
        f"{s['rows']['train']}/{s['rows']['valid']}/{s['rows']['test']} rows (the same stratified sample).",
        f"- Baseline LSTM {s['num_layers']} x {s['hidden_size']}, max_len {s['max_len']}, batch {s['batch_size']}, "
        f"{s['epochs']} epoch(s) per run, seeds {', '.join(map(str, s['seeds']))}; one CPU thread per run on "
        f"{s['workers']} worker(s) ({'Ray tasks' if s['ray'] else 'in-process'}); budget {s['budget_s'] / 60:.1f} "
        f"min, used {s['elapsed_s'] / 60:.1f} min.",
        "- Baseline `lstm_original`: the original study's recipe - every review post-padded to the longest "
        "(max_len), the output read at the last padded step, softmax before CrossEntropyLoss, Adam 1e-3, rows "
        f"reshuffled every epoch and batched in that order; batches of {s['batch_size']} instead of 1; sparse "
        "embedding updates.",
        f"- Each run is judged at its best validation epoch. Recovered = test accuracy >= {bar['acc']:.3f} "
        f"({reference}) and under {t['recover_share']:.0%} of predictions in one class; a change is a fix when "
        f"it recovers in a majority of seeds. Collapsed = at least {t['collapse_share']:.0%} of predictions in "
        f"one class and accuracy within {t['collapse_margin']} of chance.",
        f"- Intervals: one test accuracy on {n_test} reviews is known to about +/-{half:.3f} (95%, binomial); "
        "the seeds' spread is the [min-max] column. A second run of the same command on the same machine "
        "reproduces every number when it picks the same training rows (pin them with --train-rows)"
        + _rerun_note(s.get("sizing"))]


def _rerun_note(sizing: dict | None) -> str:
    """How a rerun picks the same rows: nothing to add when --train-rows pinned them."""
    if not sizing:
        return "."
    if not sizing["close_call"]:
        return "; a rerun into the same --out reuses this run's measured step times."
    return (f"; this one's choice of rows was a close call (its estimate within {STEP_NOISE:.0%} of a rung's "
            "edge): a rerun into the same --out reuses its step times, elsewhere a fresh measurement may pick "
            f"the next rung, and --train-rows {sizing['rows']} repeats this table.")


def render(r: dict) -> str:
    b = r["baseline"]
    md = ["# Why the LSTM predicts one class", "",
          f"**Collapsed: {'yes' if r['collapsed'] else 'no'}; at chance: {'yes' if r['at_chance'] else 'no'}.** "
          f"{r['root_cause']}", ""]
    if r["instability"]:
        md += [f"**Instability:** {r['instability']}", ""]
    md += [f"**The author's question (fixed LSTM vs CNN):** {r['comparison']['answer']}", "",
           f"**Not tested:** {'; '.join(r['not_tested'])}.", "",
           *(["*Smoke run (a few hundred rows, 2 epochs): checks the pipeline; too little training for a "
              "verdict.*", ""] if r["settings"]["smoke"] else []),
           "## Settings", "", *_settings(r), "",
           "## Baseline and evidence", "", *_evidence(r), "",
           "## Conditions, each with every seed", "",
           "| condition | factor | test acc per seed (best epoch) | mean [min-max] | last-epoch val acc | "
           "one-class share | recovered | curve | train s per run |",
           "|---|---|---|---|---|---|---|---|---|",
           _row("(baseline)", "-", b)]
    md += [_row(a["change"], a["factor"], a) for a in r["ablations"]]
    md += ["", "## Fixed LSTM vs CNN vs fastText (same data, same epochs)", "",
           "| model | recipe | test acc per seed (best epoch) | mean [min-max] | last-epoch val acc | "
           "one-class share | recovered | curve | train s per run |",
           "|---|---|---|---|---|---|---|---|---|"]
    md += [_row(c["change"], c["recipe"], c) for c in r["comparison"]["rows"]]
    return "\n".join(md) + "\n"
