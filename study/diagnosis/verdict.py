"""The verdict: a pure function from the runs' results to "collapsed?" and "what recovers it?".

    verdict(chance=0.5, baseline={"test_acc": 0.51, "majority_share": 0.97},
            ablations=[{"change": "pre-padding", "factor": PADDING, "test_acc": 0.70, "majority_share": 0.55}])

Collapsed is the project's one rule (``study.train.metrics.is_collapsed``); recovered is stated here.
"""
from __future__ import annotations

from study.diagnosis.plan import PADDING
from study.train import metrics

RECOVER_GAIN, RECOVER_SHARE = 0.15, 0.8  # recovered: acc >= chance + 0.15 and majority share < 0.8


def is_recovered(test_acc: float, majority_share: float, chance: float) -> bool:
    return test_acc >= chance + RECOVER_GAIN and majority_share < RECOVER_SHARE


def _named_acc(row: dict) -> str:
    return f"{row['change']} ({row['test_acc']:.2f})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def verdict(chance: float, baseline: dict, ablations: list[dict], evidence: dict | None = None) -> dict:
    """``collapsed``, the ``recovered`` changes, their ``factors`` and a one-sentence ``root_cause``.
    Ablation rows without a ``test_acc`` (skipped, not applicable) are ignored."""
    ran = [a for a in ablations if a.get("test_acc") is not None]
    num_classes = round(1 / chance)
    collapsed = bool(metrics.is_collapsed(baseline["test_acc"], baseline["majority_share"], num_classes))
    recovered = [a for a in ran if is_recovered(a["test_acc"], a["majority_share"], chance)]
    factors = sorted({a["factor"] for a in recovered}, key=lambda f: (f != PADDING, f))
    base = f"{baseline['test_acc']:.2f} with {baseline['majority_share']:.0%} of predictions in one class"
    # At chance without the 90% one-class mark is still a failure to explain, only not a full collapse.
    at_chance = bool(metrics.at_chance(baseline["test_acc"], num_classes))
    state = "collapsed" if collapsed else "stayed at chance without fully collapsing"
    out = {"collapsed": collapsed, "at_chance": at_chance, "recovered": [a["change"] for a in recovered],
           "factors": factors}
    if not at_chance:
        cause = (f"The baseline did not fail (test accuracy {base}, chance {chance:.2f}), so there is "
                 "no failure to explain on this data.")
    elif not ran:
        cause = (f"The baseline {state} ({base}, chance {chance:.2f}), but no ablation ran within the "
                 "budget, so the cause is not established.")
    elif not recovered:
        best = max(ran, key=lambda a: a["test_acc"])
        cause = (f"The baseline {state} ({base}, chance {chance:.2f}) and no single tested change recovered "
                 f"it (best: {_named_acc(best)}): the cause is none of the tested factors alone.")
    else:
        failed = [a for a in ran if a not in recovered]
        tail = f"; {_join([_named_acc(a) for a in failed])} did not" if failed else ""
        if factors == [PADDING]:
            pad = (evidence or {}).get("readout_padding", {})
            where = ""
            if pad.get("readout_on_pad_share", 0) > 0:
                where = (f" ({pad['readout_on_pad_share']:.0%} of test reviews are read after a mean of "
                         f"{pad['mean_pad_steps_when_on_pad']:.0f} pad steps, so the output barely depends "
                         "on the text)")
            cause = (f"Post-padding with the output read at the last padded step{where}: "
                     f"{_join([_named_acc(a) for a in recovered])} each recover accuracy from {base} "
                     f"(chance {chance:.2f}){tail}.")
        else:
            named = [f"{f}: " + _join([_named_acc(a) for a in recovered if a["factor"] == f]) for f in factors]
            cause = (f"Several factors each recover accuracy from {base} (chance {chance:.2f}) - "
                     f"{'; '.join(named)}{tail}.")
    out["root_cause"] = cause
    return out
