"""The verdict on hand-made results with mixed seeds: the bar, run shapes, majorities, evidence, follow-up."""
from __future__ import annotations

import pytest

from study.diagnosis import plan, verdict as v
from study.train import metrics


def run(test_acc, share, vals=None, seed=0, val_shares=None):
    """One hand-made run: judged at its best validation epoch; ``vals`` is the validation curve."""
    vals = vals or [test_acc]
    val_shares = val_shares or [share] * len(vals)
    curve = [{"epoch": i + 1, "val_acc": a, "val_majority_share": s, "train_loss": 0.6}
             for i, (a, s) in enumerate(zip(vals, val_shares))]
    best = max(range(len(vals)), key=lambda i: vals[i])
    return {"seed": seed, "test_acc": test_acc, "majority_share": share, "val_acc": vals[best],
            "best_epoch": best + 1, "curve": curve, "train_time_s": 10.0}


def cond(change, factor, runs, kind=plan.ONE_FACTOR, changes=None):
    return {"change": change, "factor": factor, "kind": kind, "keys": changes or {}, "runs": runs}


def seeds(*runs):
    return [{**r, "seed": i} for i, r in enumerate(runs)]


GOOD, BAD = run(0.78, 0.55), run(0.50, 1.0)
LEARNED_THEN_COLLAPSED = run(0.68, 0.6, vals=[0.68, 0.52, 0.50], val_shares=[0.6, 0.95, 1.0])
COMPARISONS = [cond("lstm_fixed", "-", seeds(run(0.84, 0.5), run(0.82, 0.5), run(0.83, 0.5)), plan.COMPARISON),
               cond("fasttext", "-", seeds(run(0.80, 0.5, vals=[0.86]), run(0.80, 0.5, vals=[0.86])),
                    plan.COMPARISON)]
BASELINE = cond("baseline", "-", seeds(BAD, BAD, run(0.52, 0.85)), plan.BASELINE)  # 3rd: at chance only
COLLAPSED_EVIDENCE = {"readout_padding": {"readout_on_pad_share": 0.88, "mean_pad_steps_when_on_pad": 230.0},
                      "logit_spread": {"label_auc": 0.51, "spread_ratio": 0.02}}


def test_the_bar_is_half_way_to_the_fixed_lstm_or_else_the_best_model_on_validation():
    bar = v.recovery_bar(0.5, COMPARISONS)
    assert bar["reference"] == "lstm_fixed" and bar["reference_acc"] == pytest.approx(0.83)
    assert bar["acc"] == pytest.approx(0.665)
    stuck = [cond("lstm_fixed", "-", [run(0.52, 0.9)], plan.COMPARISON), *COMPARISONS[1:]]
    bar = v.recovery_bar(0.5, stuck)  # the fixed LSTM stayed at chance: fasttext, best on validation
    assert bar["reference"] == "fasttext" and bar["acc"] == pytest.approx(0.65)
    # A small, hard 3-class set: the best model reaches 0.52, so 0.44 from chance 0.333 is half way and more.
    hard = v.recovery_bar(1 / 3, [cond("fasttext", "-", [run(0.52, 0.4)], plan.COMPARISON)])
    assert hard["acc"] == pytest.approx(1 / 3 + (0.52 - 1 / 3) / 2)
    assert v.judge_run(run(0.44, 0.5), hard["acc"], 3)["recovered"]
    assert not v.judge_run(run(0.44, 0.85), hard["acc"], 3)["recovered"]  # mostly one class
    # Nothing works: the bar never sinks to chance; nothing ran: the fixed fallback.
    assert v.recovery_bar(0.5, [cond("fasttext", "-", [run(0.49, 0.9)])])["acc"] == 0.5 + metrics.COLLAPSE_MARGIN
    assert v.recovery_bar(0.5, [])["acc"] == pytest.approx(0.5 + v.FALLBACK_GAIN)


def test_curve_shapes():
    assert v.judge_run(GOOD, 0.65, 2)["shape"] == v.LEARNED
    judged = v.judge_run(LEARNED_THEN_COLLAPSED, 0.65, 2)
    assert judged["shape"] == v.COLLAPSED_AFTER and judged["recovered"]  # judged at the best epoch
    fell = run(0.70, 0.6, vals=[0.70, 0.60], val_shares=[0.6, 0.7])
    assert v.judge_run(fell, 0.65, 2)["shape"] == v.FELL_BACK
    assert v.judge_run(BAD, 0.65, 2) | {} == {"recovered": False, "collapsed": True, "at_chance": True,
                                              "shape": v.NEVER}


def test_a_fix_needs_a_majority_of_seeds_and_the_verdict_says_how_sure():
    ablations = [cond("readout at the true length (final_state)", plan.PADDING, seeds(GOOD, GOOD, BAD),
                      changes={"readout": "final_state"}),
                 cond("pre-padding", plan.PADDING, seeds(GOOD, GOOD, GOOD), changes={"padding": "pre"}),
                 cond("no softmax before the loss", "softmax before the loss", seeds(GOOD, BAD, BAD)),
                 cond("frozen embeddings", "embedding fine-tuning", [])]  # did not run: not evidence
    out = v.verdict(0.5, BASELINE, ablations, COMPARISONS, COLLAPSED_EVIDENCE)
    assert out["collapsed"] and out["at_chance"]
    assert out["recovered"] == ["readout at the true length (final_state)", "pre-padding"]
    assert out["factors"] == [plan.PADDING]
    cause = out["root_cause"]
    assert cause.startswith("Post-padding") and "recovered in 2/3 seeds" in cause and "3/3 seeds" in cause
    assert "no softmax before the loss (0.59, recovered in 1/3 seeds) did not" in cause
    assert "collapsed in 2/3 seeds" in cause and "frozen" not in cause
    judged = {a["change"]: a for a in out["ablations"]}
    assert judged["pre-padding"]["recovered_runs"] == 3 and judged["no softmax before the loss"]["fix"] is False
    assert judged["readout at the true length (final_state)"]["test_acc"] == pytest.approx((0.78 * 2 + 0.5) / 3)


def test_barely_depends_on_the_text_only_with_measured_evidence():
    ablations = [cond("pre-padding", plan.PADDING, seeds(GOOD, GOOD, GOOD), changes={"padding": "pre"})]
    ignored = v.verdict(0.5, BASELINE, ablations, COMPARISONS, COLLAPSED_EVIDENCE)["root_cause"]
    assert "barely depends on the text (label AUC 0.51, logit spread ratio 0.02)" in ignored
    # Reviews read on pads, but the logits still rank them by label: the clause must not appear.
    ranked = {**COLLAPSED_EVIDENCE, "logit_spread": {"label_auc": 0.68, "spread_ratio": 0.02}}
    text = v.verdict(0.5, BASELINE, ablations, COMPARISONS, ranked)["root_cause"]
    assert "barely depends" not in text and "88% of test reviews" in text and "AUC 0.68" in text
    spread = {**COLLAPSED_EVIDENCE, "logit_spread": {"label_auc": 0.52, "spread_ratio": 0.4}}
    text = v.verdict(0.5, BASELINE, ablations, COMPARISONS, spread)["root_cause"]
    assert "barely depends" not in text and "varies across reviews but not with their label" in text


def test_a_failed_direct_test_is_stated_and_instability_is_reported_with_the_follow_up():
    direct = cond("readout at the true length (final_state)", plan.PADDING,
                  seeds(LEARNED_THEN_COLLAPSED, BAD, BAD), changes={"readout": "final_state"})
    pre = cond("pre-padding", plan.PADDING, seeds(GOOD, GOOD, BAD), changes={"padding": "pre"})
    follow = cond("follow-up: readout at the true length (final_state) + raw logits + clipping (norm 1.0)",
                  plan.INSTABILITY, seeds(GOOD, GOOD, GOOD), kind=plan.FOLLOW_UP_KIND)
    out = v.verdict(0.5, BASELINE, [direct, pre, follow], COMPARISONS, COLLAPSED_EVIDENCE)
    assert out["recovered"] == ["pre-padding"]  # the follow-up is two factors: never a one-factor fix
    assert "the most direct test, readout at the true length (final_state), recovered in only 1/3 seeds " \
        "(learned then collapsed, never learned, never learned)" in out["root_cause"]
    assert "not the whole story" in out["root_cause"]
    assert "readout at the true length (final_state) (1/3)" in out["instability"]
    assert "Two-factor follow-up" in out["instability"] and "recovered in 3/3 seeds" in out["instability"]
    chosen = v.readout_fix_to_stabilise([pre, direct], 0.65, 2)
    assert chosen is direct
    assert v.readout_fix_to_stabilise([pre], 0.65, 2) is None


def test_no_failure_and_no_fix():
    healthy = cond("baseline", "-", seeds(GOOD, GOOD, BAD), plan.BASELINE)
    assert "did not fail" in v.verdict(0.5, healthy, [], COMPARISONS)["root_cause"]
    stuck = v.verdict(0.5, BASELINE, [cond("gradient clipping (norm 1.0)", "optimisation", seeds(BAD, GOOD, BAD))],
                      COMPARISONS)
    assert stuck["collapsed"] and stuck["recovered"] == []
    assert "no single tested change recovered it in a majority of seeds" in stuck["root_cause"]
    assert "1/3 seeds" in stuck["root_cause"] and "none of the tested factors alone" in stuck["root_cause"]
    # When even the fixed LSTM stays at chance, no LSTM change could show: not established, not "none".
    weak = [cond("lstm_fixed", "-", seeds(BAD, BAD, BAD), plan.COMPARISON), *COMPARISONS[1:]]
    unsure = v.verdict(0.5, BASELINE, [cond("pre-padding", plan.PADDING, seeds(BAD, BAD, BAD))], weak)
    assert "fixed LSTM itself stayed at chance (0.50)" in unsure["root_cause"]
    assert "not established" in unsure["root_cause"] and "none of the tested" not in unsure["root_cause"]


def test_the_command_assembles_and_renders_a_padding_verdict_from_hand_made_runs():
    """command._report (results -> diagnosis.json) and render on runs where only the padding fixes recover."""
    from study.diagnosis import command, render

    evidence = {"prediction_histogram": {"pred_hist": [300, 0], "majority_share": 1.0, "pred_entropy_bits": 0.0,
                                         "max_entropy_bits": 1.0},
                "logit_spread": {"logit_std": [0.01, 0.01], "logit_mean_abs": [2.0, 2.0], "spread_ratio": 0.005,
                                 "prob_std": 0.001, "label_auc": 0.5},
                "readout_padding": {"readout_on_pad_share": 0.8, "mean_pad_steps_when_on_pad": 200.0,
                                    "mean_pad_steps_before_readout": 160.0, "mean_length": 230.0,
                                    "mean_width": 400.0, "padding": "post", "readout": "last_step"},
                "gradient_by_position": {"skipped": "hand-made"},
                "loss_curve": {"train_loss": [0.69], "ln_k": 0.693, "loss_vs_ln_k": 1.0, "loss_floor": 0.313}}
    good = lambda seed: {**GOOD, "seed": seed, "last_val_acc": 0.78, "params_no_embedding": 10}  # noqa: E731
    bad = lambda seed: {**BAD, "seed": seed, "last_val_acc": 0.5, "params_no_embedding": 10}  # noqa: E731
    results = {}
    for c in plan.conditions():
        fixes = c.factor == plan.PADDING or c.kind == plan.COMPARISON
        runs = [good(s) if fixes else bad(s) for s in range(3)]
        if c.kind == plan.BASELINE:
            runs = [{**bad(s), "evidence": evidence, "label_auc": 0.5, "spread_ratio": 0.005} for s in range(3)]
        results[c.name] = {"condition": c, "runs": runs, "errors": [], "skipped": None}
    report = command._report(results, 2)
    assert report["collapsed"] and report["factors"] == [plan.PADDING]
    assert report["root_cause"].startswith("Post-padding") and "barely depends on the text" in report["root_cause"]
    assert all("evidence" not in r for r in report["baseline"]["runs"]) and report["evidence"] == evidence
    assert report["baseline"]["recovered_runs"] == 0 and report["ablations"][0]["recovered_runs"] == 3
    report["settings"] = {"store": "s", "store_hash": "0" * 16, "store_rows": 5000, "num_classes": 2,
                          "vector_size": 500, "rows": {"train": 1000, "valid": 350, "test": 1500}, "num_layers": 1,
                          "hidden_size": 64, "max_len": 400, "batch_size": 16, "epochs": 1, "seeds": [0, 1, 2],
                          "workers": 2, "ray": True, "budget_s": 600, "elapsed_s": 500, "smoke": False}
    report["not_tested"] = ["x"]
    md = render.render(report)
    assert report["root_cause"] in md and "| 3/3 |" in md and "| 0/3 |" in md
