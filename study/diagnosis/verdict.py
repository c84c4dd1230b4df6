"""The verdict: a pure function from the runs' results to "collapsed?", "what recovers it?" and how sure.

    bar = recovery_bar(0.5, comparisons)               # half way from chance to the fixed LSTM's accuracy
    verdict(0.5, baseline, ablations, comparisons, evidence)

Every condition holds ``runs`` (one per seed, each judged at its best validation epoch, see runs.py). A run
*recovered* when its test accuracy reaches the bar and under ``RECOVER_SHARE`` of its predictions fall in
one class; the bar is measured in the same diagnosis: ``RECOVER_FRACTION`` of the way from chance to the
test accuracy of the fixed LSTM (the same architecture with every fix, same data and budget), so a hard
data set with a low ceiling, or a budget too small for any LSTM to learn much, gets a lower bar; if the
fixed LSTM itself stayed at chance, the comparison model with the best validation accuracy sets it.
A change is a *fix* only when it recovers in a majority of its seeds. Each run's validation curve gets a
shape: learned, learned then collapsed, learned then fell back, never learned. Collapsed is the project's one rule (``metrics.is_collapsed``).
"""
from __future__ import annotations

from study.diagnosis.plan import FOLLOW_UP_KIND, PADDING
from study.train import metrics

RECOVER_FRACTION = 0.5   # of the way from chance to the working model's accuracy
REFERENCE = "lstm_fixed"  # the working model: the comparison that is the same LSTM with every fix
RECOVER_SHARE = 0.8      # ... with under this share of predictions in one class
FALLBACK_GAIN = 0.15     # the bar over chance when no comparison model ran
TEXT_AUC_MARGIN = 0.05   # label AUC within this of 0.5: the output is unrelated to the label ...
TEXT_SPREAD = 0.1        # ... and logits vary across reviews by under this share of their size
LEARNED, COLLAPSED_AFTER, FELL_BACK, NEVER = ("learned", "learned then collapsed", "learned then fell back",
                                              "never learned")
UNSTABLE = (COLLAPSED_AFTER, FELL_BACK)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def recovery_bar(chance: float, comparisons: list[dict]) -> dict:
    """The accuracy a run must reach to count as recovered, and the working model it comes from: the
    fixed LSTM (same architecture, same budget, every fix) when it learned, else the comparison model with
    the best validation accuracy."""
    ran = [c for c in comparisons if c.get("runs")]
    if not ran:
        return {"acc": chance + FALLBACK_GAIN, "reference": None, "reference_acc": None, "fixed_lstm_acc": None,
                "fixed_lstm_learned": False}
    test = {c["change"]: _mean(r["test_acc"] for r in c["runs"]) for c in ran}
    lstm = next((c for c in ran if c["change"] == REFERENCE), None)
    lstm_learned = lstm is not None and not metrics.at_chance(test[REFERENCE], round(1 / chance))
    if lstm_learned:
        best = lstm
    else:
        best = max(ran, key=lambda c: _mean(r["val_acc"] for r in c["runs"]))  # chosen on validation
    ref = test[best["change"]]
    acc = chance + RECOVER_FRACTION * max(ref - chance, 0.0)
    return {"acc": max(acc, chance + metrics.COLLAPSE_MARGIN), "reference": best["change"], "reference_acc": ref,
            "fixed_lstm_acc": test.get(REFERENCE), "fixed_lstm_learned": lstm_learned}


def _good(acc: float, share: float, bar: float) -> bool:
    return acc >= bar and share < RECOVER_SHARE


def judge_run(run: dict, bar: float, num_classes: int) -> dict:
    """recovered / collapsed at the best validation epoch, and the shape of the validation curve."""
    curve = run.get("curve") or []
    learned = any(_good(p["val_acc"], p["val_majority_share"], bar) for p in curve)
    last = curve[-1] if curve else None
    if last is not None and _good(last["val_acc"], last["val_majority_share"], bar):
        shape = LEARNED
    elif learned:
        collapsed_last = metrics.is_collapsed(last["val_acc"], last["val_majority_share"], num_classes)
        shape = COLLAPSED_AFTER if collapsed_last else FELL_BACK
    else:
        shape = NEVER
    return {"recovered": _good(run["test_acc"], run["majority_share"], bar),
            "collapsed": bool(metrics.is_collapsed(run["test_acc"], run["majority_share"], num_classes)),
            "at_chance": bool(metrics.at_chance(run["test_acc"], num_classes)), "shape": shape}


def summarize(condition: dict, bar: float, num_classes: int) -> dict:
    """The condition with each run judged and the counts: recovered_runs, fix (a majority recovered)."""
    runs = [{**r, **judge_run(r, bar, num_classes)} for r in condition.get("runs") or []]
    n = len(runs)
    out = {**condition, "runs": runs}
    if not n:
        return {**out, "test_acc": None, "recovered_runs": 0, "fix": False}
    count = lambda key: sum(r[key] for r in runs)  # noqa: E731
    return {**out, "test_acc": _mean(r["test_acc"] for r in runs), "val_acc": _mean(r["val_acc"] for r in runs),
            "test_acc_min": min(r["test_acc"] for r in runs), "test_acc_max": max(r["test_acc"] for r in runs),
            "majority_share": _mean(r["majority_share"] for r in runs),
            "train_time_s": _mean(r["train_time_s"] for r in runs),
            "recovered_runs": count("recovered"), "collapsed_runs": count("collapsed"),
            "at_chance_runs": count("at_chance"), "shapes": [r["shape"] for r in runs],
            "fix": count("recovered") * 2 > n}


def ignores_text(spread: dict) -> bool:
    """Measured evidence that the output barely depends on the text: unrelated to the label (AUC near
    0.5) and nearly the same logits for every review."""
    auc = spread.get("label_auc", float("nan"))
    return abs(auc - 0.5) <= TEXT_AUC_MARGIN and spread.get("spread_ratio", 1.0) < TEXT_SPREAD


def _seeds(c: dict) -> str:
    return f"{c['recovered_runs']}/{len(c['runs'])} seeds"


def _named(c: dict) -> str:
    return f"{c['change']} ({c['test_acc']:.2f}, recovered in {_seeds(c)})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _padding_clause(evidence: dict) -> str:
    pad, spread = evidence.get("readout_padding", {}), evidence.get("logit_spread", {})
    parts = []
    if pad.get("readout_on_pad_share", 0) > 0:
        parts.append(f"{pad['readout_on_pad_share']:.0%} of test reviews are read after a mean of "
                     f"{pad['mean_pad_steps_when_on_pad']:.0f} pad steps")
    if ignores_text(spread):
        parts.append(f"so the output barely depends on the text (label AUC {spread['label_auc']:.2f}, logit "
                     f"spread ratio {spread['spread_ratio']:.2f})")
    elif abs(spread.get("label_auc", 0.0) - 0.5) <= TEXT_AUC_MARGIN:
        parts.append(f"the output varies across reviews but not with their label (label AUC "
                     f"{spread['label_auc']:.2f}, logit spread ratio {spread['spread_ratio']:.2f})")
    elif "label_auc" in spread:
        parts.append(f"the logits still follow the label somewhat (AUC {spread['label_auc']:.2f})")
    return f" ({'; '.join(parts)})" if parts else ""


def _instability(ran: list[dict], follow_ups: list[dict]) -> str:
    unstable = [(c, sum(s in UNSTABLE for s in c["shapes"])) for c in ran]
    unstable = [(c, k) for c, k in unstable if k]
    if not unstable:
        return ""
    named = _join([f"{c['change']} ({k}/{len(c['runs'])})" for c, k in unstable])
    text = (f"Runs that learned and then lost it again (instability: learning rate, softmax before the loss, "
            f"long sequences): {named}.")
    for f in follow_ups:
        text += (f" Two-factor follow-up {f['change'].removeprefix('follow-up: ')}: {f['test_acc']:.2f}, "
                 f"recovered in {_seeds(f)} ({', '.join(f['shapes'])}).")
    return text


def verdict(chance: float, baseline: dict, ablations: list[dict], comparisons: list[dict],
            evidence: dict | None = None) -> dict:
    """Judge every run; name the fixes (majority of seeds), the instability and the root cause."""
    num_classes = round(1 / chance)
    bar = recovery_bar(chance, comparisons)
    base = summarize(baseline, bar["acc"], num_classes)
    judged = [summarize(a, bar["acc"], num_classes) for a in ablations]
    ran = [a for a in judged if a["runs"] and a.get("kind") != FOLLOW_UP_KIND]
    follow_ups = [a for a in judged if a["runs"] and a.get("kind") == FOLLOW_UP_KIND]
    fixes = [a for a in ran if a["fix"]]
    factors = sorted({a["factor"] for a in fixes}, key=lambda f: (f != PADDING, f))
    n = len(base["runs"])
    collapsed = base["collapsed_runs"] * 2 > n
    at_chance = base["at_chance_runs"] * 2 > n
    described = (f"{base['test_acc']:.2f} with {base['majority_share']:.0%} of predictions in one class, "
                 f"collapsed in {base['collapsed_runs']}/{n} seeds") if n else "no run"
    state = "collapsed" if collapsed else "stayed at chance without fully collapsing"
    if not at_chance:
        cause = (f"The baseline did not fail ({described}, chance {chance:.2f}), so there is no failure to "
                 "explain on this data.")
    elif not ran:
        cause = f"The baseline {state} ({described}, chance {chance:.2f}), but no change ran: cause not established."
    elif not fixes:
        best = max(ran, key=lambda a: a["val_acc"])
        cause = (f"The baseline {state} ({described}, chance {chance:.2f}) and no single tested change recovered "
                 f"it in a majority of seeds (best on validation: {_named(best)})")
        if bar["fixed_lstm_acc"] is not None and not bar["fixed_lstm_learned"]:
            cause += (f"; but the fixed LSTM itself stayed at chance ({bar['fixed_lstm_acc']:.2f}) on this sample "
                      "and budget, so no LSTM change could show a recovery: the cause is not established (give "
                      "more --budget-minutes or --train-rows).")
        else:
            cause += ": the cause is none of the tested factors alone."
    else:
        failed = [a for a in ran if not a["fix"]]
        tail = f"; {_join([_named(a) for a in failed])} did not" if failed else ""
        if factors == [PADDING]:
            direct = next((a for a in ran if a.get("keys") == {"readout": "final_state"}), None)
            caveat = ""
            if direct is not None and not direct["fix"]:
                caveat = (f". But the most direct test, {direct['change']}, recovered in only {_seeds(direct)} "
                          f"({', '.join(direct['shapes'])}), so the pads before the readout are not the whole story")
            cause = (f"Post-padding with the output read at the last padded step{_padding_clause(evidence or {})}: "
                     f"{_join([_named(a) for a in fixes])} recover accuracy from {described} (chance "
                     f"{chance:.2f}){tail}{caveat}.")
        else:
            named = [f"{f}: " + _join([_named(a) for a in fixes if a["factor"] == f]) for f in factors]
            cause = (f"Several factors each recover accuracy from {described} (chance {chance:.2f}) - "
                     f"{'; '.join(named)}{tail}.")
    return {"collapsed": collapsed, "at_chance": at_chance, "recovered": [a["change"] for a in fixes],
            "factors": factors, "root_cause": cause, "instability": _instability([base, *ran], follow_ups),
            "bar": bar, "baseline": base, "ablations": judged,
            "comparisons": [summarize(c, bar["acc"], num_classes) for c in comparisons]}


def readout_fix_to_stabilise(ablations: list[dict], bar: float, num_classes: int):
    """The padding/readout fix whose runs most often learned and then lost it (None when none did): the
    one the follow-up combines with the usual remedy. Ties go to the earlier (higher-priority) change."""
    best, most = None, 0
    for a in ablations:
        if a.get("factor") != PADDING or a.get("kind") == FOLLOW_UP_KIND:
            continue
        k = sum(judge_run(r, bar, num_classes)["shape"] in UNSTABLE for r in a.get("runs") or [])
        if k > most:
            best, most = a, k
    return best
