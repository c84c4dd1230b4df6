"""diagnosis.md from the diagnosis's result dict (the same dict as diagnosis.json)."""
from __future__ import annotations


def compare(rows: list[dict], ablations: list[dict]) -> dict:
    """The author's question in one sentence: the fixed LSTM against the CNN and fastText (and the best
    one-factor fix of the original study's LSTM, which still pads every review to the longest)."""
    ran = [r for r in rows if r.get("test_acc") is not None]
    fixes = [a for a in ablations if a.get("test_acc") is not None]
    parts = [f"{r['change']} {r['test_acc']:.3f} in {r['train_time_s']:.0f} s "
             f"({r['params_no_embedding']:,} params w/o embeddings)" for r in ran]
    answer = "No comparison run fitted the budget."
    if ran:
        best = max(ran, key=lambda r: r["test_acc"])
        answer = (f"Same data, same epochs: {'; '.join(parts)}. Best: {best['change']}."
                  + ("" if len(ran) == len(rows) else " (some runs skipped for time)"))
    if fixes:
        fix = max(fixes, key=lambda a: a["test_acc"])
        answer += (f" Best one-factor fix of the original LSTM: {fix['change']} {fix['test_acc']:.3f} in "
                   f"{fix['train_time_s']:.0f} s.")
    return {"rows": rows, "answer": answer}


def render(r: dict) -> str:
    s, b, ev = r["settings"], r["baseline"], r["evidence"]
    hist, spread, pad = ev["prediction_histogram"], ev["logit_spread"], ev["readout_padding"]
    grad, loss = ev["gradient_by_position"], ev["loss_curve"]
    t = r["thresholds"]
    md = ["# Why the LSTM predicts one class", "",
          f"**Collapsed: {'yes' if r['collapsed'] else 'no'}; at chance: {'yes' if r.get('at_chance') else 'no'}.** "
          f"{r['root_cause']}", "",
          f"**The author's question (fixed LSTM vs CNN):** {r['comparison']['answer']}", "",
          *(["*Smoke run (a few hundred rows, 1 epoch): checks the pipeline; too little training for a "
             "verdict.*", ""] if s["smoke"] else []),
          "## Settings", "",
          f"- Store `{s['store']}` (content hash `{s['store_hash'][:16]}`), {s['store_rows']:,} rows, "
          f"{s['num_classes']} classes, {s['vector_size']}-d word2vec; runs used train/valid/test "
          f"{s['rows']['train']}/{s['rows']['valid']}/{s['rows']['test']} rows "
          f"({s['train_fraction']:.0%} of the training rows).",
          f"- LSTM {s['num_layers']} x {s['hidden_size']}, max_len {s['max_len']}, batch {s['batch_size']}, "
          f"{s['epochs']} epoch(s) per run, seed {s['seed']}, {s['threads']} CPU thread(s); budget "
          f"{s['budget_s'] / 60:.1f} min, used {s['elapsed_s'] / 60:.1f} min.",
          f"- Baseline `lstm_original`: the original study's recipe - every review post-padded to the longest (max_len), "
          "the output read at the last padded step, softmax before CrossEntropyLoss, Adam 1e-3, rows "
          f"reshuffled every epoch; batches of {s['batch_size']} instead of the original study's 1 so it fits the budget; "
          "sparse embedding updates.",
          f"- Collapsed = at least {t['collapse_share']:.0%} of test predictions in one class and accuracy "
          f"within {t['collapse_margin']} of chance ({r['chance']:.3f}). Recovered = accuracy >= chance + "
          f"{t['recover_gain']} and under {t['recover_share']:.0%} of predictions in one class.", "",
          "## Baseline and evidence", "",
          f"- Test accuracy {b['test_acc']:.3f} (chance {r['chance']:.3f}), macro F1 {b['macro_f1']:.3f}; "
          f"predictions per class {hist['pred_hist']}: majority share {hist['majority_share']:.2f}, entropy "
          f"{hist['pred_entropy_bits']:.3f} of {hist['max_entropy_bits']:.3f} bits.",
          f"- Logits across test inputs: std {', '.join(f'{v:.3f}' for v in spread['logit_std'])} vs mean "
          f"magnitude {', '.join(f'{v:.3f}' for v in spread['logit_mean_abs'])} (ratio "
          f"{spread['spread_ratio']:.3f}); std of the predicted probabilities {spread['prob_std']:.4f}; "
          f"AUC of the logits for the true class {spread.get('label_auc', float('nan')):.3f} (0.5 = unrelated "
          "to the text's label).",
          f"- Readout: {pad['readout_on_pad_share']:.0%} of test reviews are read at a pad position, after a mean "
          f"of {pad['mean_pad_steps_before_readout']:.0f} pad steps (mean length {pad['mean_length']:.0f}, "
          f"padded width {pad['mean_width']:.0f}, {pad['padding']}-padding, readout {pad['readout']})."]
    if "skipped" not in grad:
        md.append(f"- Gradient reaching the embedded input (mean L2 norm per step): first {grad['edge_steps']} "
                  f"steps {grad['grad_first_steps']:.2e}, last {grad['edge_steps']} real steps "
                  f"{grad['grad_last_real_steps']:.2e}, pad steps {grad['grad_pad_steps']:.2e}; embedding "
                  f"table {grad['embedding_table_grad_norm']:.2e}.")
    md += [f"- Training loss per epoch {', '.join(f'{v:.4f}' for v in loss['train_loss'])} vs ln(K) = "
           f"{loss['ln_k']:.4f} (ratio {loss['loss_vs_ln_k']:.3f}; lowest reachable with softmax before the "
           f"loss: {loss['loss_floor']:.3f}).", "",
           "## One change at a time", "",
           "| change | factor | test acc | majority share | train s (incl. eval) | recovered |",
           "|---|---|---|---|---|---|",
           f"| (baseline) | - | {b['test_acc']:.3f} | {b['majority_share']:.2f} | {b['train_time_s']:.0f} | - |"]
    for a in r["ablations"]:
        if a.get("test_acc") is None:
            md.append(f"| {a['change']} | {a['factor']} | - | - | - | not run: {a['skipped']} |")
        else:
            md.append(f"| {a['change']} | {a['factor']} | {a['test_acc']:.3f} | {a['majority_share']:.2f} | "
                      f"{a['train_time_s']:.0f} | {'yes' if a['change'] in r['recovered'] else 'no'} |")
    md += ["", "## Fixed LSTM vs CNN vs fastText (same data, same epochs)", "",
           "| model | recipe | test acc | macro F1 | train s | samples/s | params w/o embeddings |",
           "|---|---|---|---|---|---|---|"]
    for c in r["comparison"]["rows"]:
        if c.get("test_acc") is None:
            md.append(f"| {c['change']} | {c['recipe']} | - | - | - | - | not run: {c['skipped']} |")
        else:
            md.append(f"| {c['change']} | {c['recipe']} | {c['test_acc']:.3f} | {c['macro_f1']:.3f} | "
                      f"{c['train_time_s']:.0f} | {c['samples_per_s']:.0f} | {c['params_no_embedding']:,} |")
    return "\n".join(md) + "\n"
