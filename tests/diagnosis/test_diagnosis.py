"""The LSTM diagnosis: each probe on tiny real data, the verdict on hand-made results, the CLI end to end."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from data_prep import store as store_mod
from study.diagnosis import plan, verdict
from study.diagnosis import probes
from study.__main__ import main as study_main
from study.train import metrics
from study.train.config import TrainConfig
from study.train.trainer import Session, train


@pytest.fixture(scope="module")
def imdb_store(tmp_path_factory) -> str:
    """A tiny real IMDB store (120 reviews, 16-d word2vec, at most 100 tokens)."""
    out = tmp_path_factory.mktemp("diag") / "imdb60"
    subprocess.run([sys.executable, "-m", "data_prep", "build", "--source", "imdb", "--per-class", "60",
                    "--vector-size", "16", "--max-len", "100", "--out", str(out)], check=True, capture_output=True)
    return str(out)


def baseline(**changes) -> TrainConfig:
    return TrainConfig.from_flat(plan.derive(plan.baseline_flat(8, 100, 1, 16, 0), changes))


def session_for(store, **changes) -> Session:
    torch.manual_seed(0)
    return Session(baseline(**changes), store, torch.device("cpu"))


def test_prediction_histogram_and_entropy():
    one = probes.prediction_histogram(np.zeros(10, np.int64), 2)
    assert one["pred_hist"] == [10, 0] and one["majority_share"] == 1.0 and one["pred_entropy_bits"] == 0.0
    even = probes.prediction_histogram(np.array([0, 1, 2] * 4), 3)
    assert even["majority_share"] == pytest.approx(1 / 3)
    assert even["pred_entropy_bits"] == pytest.approx(math.log2(3)) == pytest.approx(even["max_entropy_bits"])


def test_logit_spread_tells_constant_from_input_dependent_outputs():
    constant = probes.logit_spread(np.tile([[0.2, -0.1]], (50, 1)))
    assert constant["spread_ratio"] == pytest.approx(0.0) and constant["prob_std"] == pytest.approx(0.0)
    varied = probes.logit_spread(np.random.default_rng(0).normal(0, 1, size=(50, 2)))
    assert varied["spread_ratio"] > 0.5 and varied["prob_std"] > 0.05
    labels = np.array([0, 0, 1, 1])
    assert probes.label_auc(np.zeros((4, 2)), labels) == 0.5  # constant output: unrelated to the label
    assert probes.label_auc(np.array([[1, 0], [0.5, 0], [0, 1], [0, 2.0]]), labels) == 1.0
    assert probes.logit_spread(np.array([[0, 2.0], [0, 1], [1, 0], [2, 0]]), labels)["label_auc"] == 0.0


def test_readout_padding_counts_pad_steps_from_the_store_lengths(imdb_store):
    store = store_mod.load(imdb_store)
    test = store.indices("test")
    lengths = np.minimum(store.lengths[test], 100)
    width = int(np.minimum(store.lengths, 100).max())  # pad_to_longest: every batch this wide
    post = probes.readout_padding(session_for(store), test)
    assert post["mean_width"] == width
    assert post["readout_on_pad_share"] == pytest.approx(float((lengths < width).mean()))
    assert post["mean_pad_steps_before_readout"] == pytest.approx(float((width - lengths).mean()))
    assert post["readout_on_pad_share"] > 0  # some IMDB reviews are shorter than 100 tokens
    for changes in ({"padding": "pre"}, {"readout": "final_state"}, {"readout": "max"}):
        fixed = probes.readout_padding(session_for(store, **changes), test)
        assert fixed["readout_on_pad_share"] == 0.0 and fixed["mean_pad_steps_before_readout"] == 0.0
    assert list(probes.readout_positions(np.array([3, 10, 7]), 10, "post", "last_step")) == [7, 0, 3]


def test_gradient_reaches_pads_not_words_when_reading_after_the_pads(imdb_store):
    store = store_mod.load(imdb_store)
    rows = store.indices("test")[:24]
    post = probes.gradient_by_position(session_for(store), rows)
    assert post["pad_step_count"] > 0 and post["grad_pad_steps"] > 0
    assert post["grad_first_steps"] < post["grad_last_real_steps"]  # vanishes on the way back to the text
    assert post["embedding_table_grad_norm"] > 0
    exact = probes.gradient_by_position(session_for(store, readout="final_state"), rows)
    assert exact["grad_pad_steps"] == 0.0  # pads after the true end cannot affect the output
    assert exact["grad_last_real_steps"] > 0
    pre = probes.gradient_by_position(session_for(store, padding="pre"), rows)
    assert pre["grad_last_real_steps"] > 0 and pre["grad_last_real_steps"] > post["grad_last_real_steps"]


def test_loss_curve_against_ln_k(imdb_store):
    store = store_mod.load(imdb_store)
    history = train(baseline(epochs=2), store, threads=1)
    curve = probes.loss_curve(history, 2, softmax_loss=True)
    assert curve["train_loss"] == [m["train_loss"] for m in history]
    assert curve["ln_k"] == pytest.approx(math.log(2))
    assert curve["loss_floor"] == pytest.approx(math.log(1 + 1 / math.e))  # 0.313: softmax before CE
    assert curve["loss_vs_ln_k"] == pytest.approx(history[-1]["train_loss"] / math.log(2))
    stuck = probes.loss_curve([{"train_loss": 0.6931}, {"train_loss": 0.6929}], 2, softmax_loss=True)
    assert not stuck["moved_below_ln_k"]
    assert probes.loss_curve([{"train_loss": 0.4}], 2, softmax_loss=False)["moved_below_ln_k"]


def ab(change, factor, acc, share):
    return {"change": change, "factor": factor, "test_acc": acc, "majority_share": share}


HAND_MADE = [ab("final_state", "padding/readout", 0.74, 0.55), ab("pre-padding", "padding/readout", 0.72, 0.6),
             ab("max pooling", "padding/readout", 0.82, 0.52), ab("no softmax", "softmax before the loss", 0.51, 0.97),
             ab("clip", "optimisation", 0.50, 0.99),
             {"change": "frozen", "factor": "embedding fine-tuning", "test_acc": None, "skipped": "out of budget"}]


def test_verdict_names_padding_when_only_padding_fixes_recover():
    evidence = {"readout_padding": {"readout_on_pad_share": 0.88, "mean_pad_steps_when_on_pad": 230.0}}
    v = verdict.verdict(0.5, {"test_acc": 0.51, "majority_share": 0.95}, HAND_MADE, evidence)
    assert v["collapsed"] and v["recovered"] == ["final_state", "pre-padding", "max pooling"]
    assert v["factors"] == ["padding/readout"]
    assert "Post-padding" in v["root_cause"] and "88%" in v["root_cause"] and "no softmax (0.51)" in v["root_cause"]
    assert "frozen" not in v["root_cause"]  # skipped rows are not evidence


def test_verdict_reports_several_factors_no_collapse_and_no_recovery():
    several = verdict.verdict(0.5, {"test_acc": 0.5, "majority_share": 1.0},
                               HAND_MADE[:3] + [ab("no softmax", "softmax before the loss", 0.70, 0.6)])
    assert several["factors"] == ["padding/readout", "softmax before the loss"]
    assert "Several factors" in several["root_cause"] and "no softmax (0.70)" in several["root_cause"]
    healthy = verdict.verdict(0.5, {"test_acc": 0.80, "majority_share": 0.55}, HAND_MADE)
    assert not healthy["collapsed"] and "did not fail" in healthy["root_cause"]
    # At chance but under the 90% one-class mark: not "collapsed", yet the cause is still looked for.
    at_chance = verdict.verdict(0.5, {"test_acc": 0.50, "majority_share": 0.88}, HAND_MADE)
    assert not at_chance["collapsed"] and at_chance["at_chance"]
    assert at_chance["factors"] == ["padding/readout"] and "Post-padding" in at_chance["root_cause"]
    # 3 classes: 0.45 is 0.12 above chance (not collapsed), 0.62 needs share < 0.8 to count as recovered
    assert not metrics.is_collapsed(0.45, 0.95, 3)
    assert verdict.is_recovered(0.62, 0.7, 1 / 3) and not verdict.is_recovered(0.62, 0.85, 1 / 3)
    stuck = verdict.verdict(0.5, {"test_acc": 0.52, "majority_share": 0.93}, [ab("clip", "optimisation", 0.55, 0.9)])
    assert stuck["collapsed"] and stuck["recovered"] == [] and "no single tested change" in stuck["root_cause"]


def test_subsample_is_stratified_and_keeps_the_store_intact(synthetic_store):
    store = store_mod.load(synthetic_store)
    half = plan.subsample(store, 0.5, seed=0, test_cap=30)
    train_rows = half.indices("train")
    assert len(train_rows) == pytest.approx(len(store.indices("train")) / 2, abs=store.num_classes)
    assert set(np.bincount(store.labels[train_rows])) == {len(train_rows) // store.num_classes}
    assert len(half.indices("test")) == 30 and len(store.indices("test")) == 54


def test_cli_smoke_writes_the_schema(imdb_store, tmp_path, capsys):
    out = tmp_path / "diag"
    assert study_main(["diagnose", "--store", imdb_store, "--out", str(out), "--smoke", "--threads", "1"]) == 0
    report = json.loads((out / "diagnosis.json").read_text())
    assert report["chance"] == 0.5
    assert {"name", "test_acc", "majority_share", "pred_entropy_bits", "loss_vs_ln_k"} <= set(report["baseline"])
    assert report["baseline"]["name"] == "lstm_original" and isinstance(report["collapsed"], bool)
    assert {"prediction_histogram", "logit_spread", "readout_padding", "gradient_by_position",
            "loss_curve"} <= set(report["evidence"])
    assert 0.0 <= report["evidence"]["logit_spread"]["label_auc"] <= 1.0
    changes = [a["change"] for a in report["ablations"]]
    assert len(changes) == len(plan.ABLATIONS) + len(plan.NOT_APPLICABLE)
    ran = [a for a in report["ablations"] if a["test_acc"] is not None]
    assert all({"test_acc", "majority_share", "train_time_s"} <= set(a) for a in ran) and len(ran) >= 4
    assert [c["change"] for c in report["comparison"]["rows"]] == ["lstm_fixed", "cnn_original", "fasttext"]
    s = report["settings"]
    assert s["store_hash"] == store_mod.load(imdb_store).content_hash and s["epochs"] == 1 and s["max_len"] <= 100
    md = (out / "diagnosis.md").read_text()
    assert report["root_cause"] in md and "Fixed LSTM vs CNN" in md
    assert "[diagnose]" in capsys.readouterr().err  # progress on stderr


def test_cli_bad_store_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "study", "diagnose", "--store", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("study diagnose: error:") and len(proc.stderr.strip().splitlines()) == 1
