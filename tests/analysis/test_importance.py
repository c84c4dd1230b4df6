"""Hyperparameter importance (Optuna's fANOVA) on trials whose knobs are known to matter, or not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.analysis import importance
from study.analysis.summary import importance_section
from study.analysis.table import METRICS, trials_table


def frame(n: int, arch: str = "cnn", seed: int = 0) -> pd.DataFrame:
    """``n`` finished trials: freezing drives accuracy, batch size drives the cost, lr is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        freeze, batch, lr = bool(i % 2), [16, 32, 64][i % 3], float(10 ** rng.uniform(-4, -2))
        sps = 100.0 * batch + rng.normal(0, 5)
        rows.append({**dict.fromkeys(METRICS, 1.0),
                     "trial_id": f"{arch}{i}", "arch": arch, "status": "TERMINATED", "epochs": 2,
                     "val_acc": (0.60 if freeze else 0.85) + rng.normal(0, 0.005),
                     "test_acc": 0.8, "samples_per_s": sps, "params_no_embedding": 5000 + 10 * i,
                     "majority_share": 0.5, "pred_hist": [50, 50],
                     "config/arch": arch, "config/seed": 0, "config/epochs": 2, "config/max_len": 40,
                     "config/freeze_embeddings": freeze, "config/batch_size": batch, "config/lr": lr})
    return pd.DataFrame(rows)


def test_fanova_finds_the_knob_that_moves_each_target():
    result = importance.compute(trials_table(frame(24)))
    table = result.values.set_index("param")
    # fixed keys (max_len), the seed and epochs are not searched hyperparameters
    assert set(table.index) == {"freeze_embeddings", "batch_size", "lr"}
    assert table["val_acc"].idxmax() == "freeze_embeddings" and table.loc["freeze_embeddings", "val_acc"] > 0.8
    assert table["train_s_per_1k_samples"].idxmax() == "batch_size"
    assert table["val_acc"].sum() == pytest.approx(1.0)
    text = "\n".join(importance_section(result))
    assert "| cnn | freeze_embeddings |" in text and "fANOVA" in text
    assert "too few to trust" not in text          # 24 finished trials: above the threshold


def test_too_few_trials_are_flagged_or_skipped(tmp_path):
    t = trials_table(pd.concat([frame(6, "cnn"), frame(2, "lstm")], ignore_index=True))
    result = importance.compute(t)
    assert set(result.values["arch"]) == {"cnn"}
    text = "\n".join(importance.markdown(result))
    assert "cnn: only 6 finished trials, too few to trust" in text
    assert "lstm: not computed (2 finished trials, fewer than 3)" in text
    files = importance.write_plot(result, tmp_path)
    assert files["importance.png"].stat().st_size > 0 and files["importance.svg"].stat().st_size > 0


def test_nothing_to_compute_writes_no_plot(tmp_path):
    result = importance.compute(trials_table(frame(2)))
    assert result.values.empty and importance.write_plot(result, tmp_path) == {}
    assert "_Not computed: cnn: 2 finished trials" in "\n".join(importance.markdown(result))

