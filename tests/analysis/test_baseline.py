"""summary.md's baseline section: what each network buys over the best linear trial, at what cost, with noise."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from study.analysis import report
from study.analysis.summary import accuracy_gap, baseline_section
from study.analysis.table import trials_table


def _row(i, arch, val, test, time_s, params, *, n=1000, **config):
    return {"trial_id": f"t{i}", "arch": arch, "status": "TERMINATED", "epochs": 1, "epoch": 1,
            "val_acc": val, "test_acc": test, "macro_f1": test, "train_loss": 0.3, "val_loss": 0.4,
            "recall": [test, test], "pred_hist": [n // 2, n - n // 2], "majority_share": 0.5,
            "samples_per_s": 1000.0 / time_s, "epoch_time_s": time_s, "train_time_s": time_s,
            "params_total": params, "params_trainable": params, "params_no_embedding": params,
            "max_params_per_layer": params, "peak_rss_mb": 300.0, "device": "cpu", "threads": 1,
            "config/arch": arch, **{f"config/{k}": v for k, v in config.items()}}


def frame() -> pd.DataFrame:
    return pd.DataFrame([
        _row(1, "linear", 0.86, 0.850, 2.0, 30_000, C=4.0, nb_scaling=True),
        _row(2, "linear", 0.80, 0.790, 1.0, 10_000, C=0.1, nb_scaling=False),
        _row(3, "cnn", 0.87, 0.855, 200.0, 60_000, freeze_embeddings=False),     # within the noise
        _row(4, "fasttext", 0.95, 0.940, 20.0, 600, freeze_embeddings=True),     # beyond it
        _row(5, "lstm", 0.70, 0.700, 400.0, 300_000, freeze_embeddings=False),   # far below
    ])


def test_accuracy_gap_is_the_unpaired_normal_interval():
    gap, low, high = accuracy_gap(0.90, 1000, 0.85, 1000)
    half = 1.959964 * math.sqrt(0.9 * 0.1 / 1000 + 0.85 * 0.15 / 1000)
    assert gap == pytest.approx(0.05) and (low, high) == pytest.approx((0.05 - half, 0.05 + half))
    assert 0 < low < gap < high
    narrower = accuracy_gap(0.90, 10_000, 0.85, 10_000)  # more test reviews, less noise
    assert narrower[2] - narrower[1] < high - low
    assert all(math.isnan(v) for v in accuracy_gap(0.9, 0, 0.85, 1000)[1:])


def test_each_network_against_the_best_linear_trial():
    md = baseline_section(trials_table(frame()))
    assert "`t1`" in md.splitlines()[0]  # the best linear trial by val_acc, not the cheaper t2
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert list(rows)[1:] == ["cnn", "lstm", "fasttext"]  # networks only, in the trainer's order
    cnn, lstm, fasttext = rows["cnn"], rows["lstm"], rows["fasttext"]
    assert "| +0.5 |" in cnn and "within the noise" in cnn and "| 100x |" in cnn and "| 2.0x |" in cnn
    assert "| +9.0 |" in fasttext and "beyond the noise" in fasttext and "| 10x |" in fasttext
    assert "| 0.02x |" in fasttext  # 600 parameters against 30,000 coefficients
    assert "| -15.0 |" in lstm and "beyond the noise" in lstm


def test_no_linear_trial_says_how_to_add_one():
    md = baseline_section(trials_table(frame().query("arch != 'linear'")))
    assert "search_spaces/linear.yaml" in md


def test_report_with_a_linear_architecture(tmp_path):
    files = report.write_report(frame(), tmp_path)
    md = files["summary.md"].read_text()
    assert "## What the networks buy over the linear baseline" in md
    assert "| linear |" not in md.split("## Embedding kind")[1].split("## What")[0]  # no embeddings to freeze
    assert "| nb_scaling |" in md  # the linear trial's hyperparameters under the table
    epochs = next(line for line in md.splitlines() if line.startswith("| Num epochs"))
    assert epochs.split("|")[4].strip() == "1 (one fit)"  # columns: cnn, fasttext, linear, lstm
