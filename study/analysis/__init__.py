"""Analysis of a finished (or running) study, without Ray or torch.

    from study.analysis import load
    trials = load("results/experiments", "demo")    # pandas DataFrame: one row per trial
"""
from __future__ import annotations


def load(storage_path: str, name: str):
    """The study's trials table (every metric and ``config/<key>``, derived costs, ``collapsed``)."""
    from study import experiment
    from study.analysis.results import trials_frame
    from study.analysis.table import trials_table

    return trials_table(trials_frame(experiment.experiment_path(storage_path, name)))
