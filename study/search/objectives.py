"""What the search optimises, without Ray: the metric ASHA ranks on and the objectives Optuna aims at.

Ray-free so that ``study run`` can check ``--objective``/``--cost`` before Ray is imported (Ray reads its
auth settings at import: see ``ray_env.py``).
"""
from __future__ import annotations

METRIC, MODE = "val_acc", "max"
OBJECTIVES = ("front", "accuracy")


def objective_metrics(objective: str, cost: str) -> tuple[list[str], list[str]]:
    """Tune metric and mode lists of an objective (a one-element list for ``accuracy``)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    return ([METRIC, cost], [MODE, "min"]) if objective == "front" else ([METRIC], [MODE])
