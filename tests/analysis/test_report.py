"""The report on a realistic hand-made trials frame: files written, table contents, collapse flag.

Validation and test accuracies are ordered *oppositely* within each architecture (the trial best on
validation is worst on test), so any selection made on the test split fails an assertion here.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

import helpers
from helpers import make_frame
from study.analysis import noise, report
from study.analysis.table import trials_table


def predictions(frame: pd.DataFrame, n: int = 600) -> dict:
    """Test predictions matching each finished run's test accuracy (binary labels): a run is right on a
    window of reviews, shifted a little per trial, so models disagree on a few reviews besides their gap."""
    out = {}
    for k, (_, r) in enumerate(frame[frame.status == "TERMINATED"].iterrows()):
        right = (np.arange(n) - 5 * (k % 3)) % n < round(r.test_acc * n)
        out[r.trial_id] = {"test_rows": np.arange(n), "test_labels": np.zeros(n, np.int64),
                           "test_preds": (~right).astype(np.int64)}
    return out


ROOT = Path(__file__).resolve().parents[2]
SPLITS = noise.Splits(n_val=700, n_test=600, constant_val=0.5, constant_test=0.5, source="hand-made")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    frame = make_frame()
    files = report.write_report(frame, out, splits=SPLITS, predictions=predictions(frame),
                                launch={"price_per_hour": {"cpu": 0.05, "gpu": 0.0}, "cpus_per_trial": 2})
    return out, files


def test_collapsed_flag_logic():
    t = pd.DataFrame({"trial_id": list("abcde"), "arch": "lstm", "status": "TERMINATED",
                      "majority_share": [0.95, 0.95, 0.85, 0.9, np.nan],
                      "test_acc": [0.36, 0.45, 0.34, 0.5, 0.33],
                      "pred_hist": [[90, 5, 5], [90, 5, 5], [80, 10, 10], [9, 1], None]})
    flags = trials_table(t).set_index("trial_id")["collapsed"]
    # a: one class at chance; b: one class but 12 points above chance; c: share under 0.9;
    # d: binary, share exactly 0.9, accuracy exactly chance; e: unknown -> not flagged
    assert flags.to_dict() == {"a": True, "b": False, "c": False, "d": True, "e": False}


def test_files_written(written):
    out, files = written
    for name in ("trials.parquet", "pareto.json", "pareto.html", "summary.md"):
        assert (out / name).stat().st_size > 0
    for cost in ("train_time_s", "params_no_embedding", "infer_ms_per_review", "train_cost"):
        w, h = Image.open(out / f"pareto_{cost}.png").size
        assert w >= 1000 and h >= 700
        assert ET.parse(out / f"pareto_{cost}.svg").getroot().tag.endswith("svg")
    page = (out / "pareto.html").read_text()
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]     # one inline script, nothing loaded
    assert "src=" not in page and "<link" not in page
    for i in range(24):
        assert f"t{i:03d}" in page


def test_parquet_columns(written):
    out, _ = written
    t = pq.read_table(out / "trials.parquet").to_pandas()
    needed = {"trial_id", "arch", "status", "val_acc", "test_acc", "macro_f1", "train_time_s",
              "epoch_time_s", "samples_per_s", "params_total", "params_trainable",
              "params_no_embedding", "max_params_per_layer", "epochs", "peak_rss_mb", "collapsed",
              "train_s_per_1k_samples", "config/lr", "config/widths", "config/freeze_embeddings"}
    assert needed <= set(t.columns)
    assert len(t) == 26 and t["repeat_of"].tolist().count("t020") == 2
    assert t.loc[t.trial_id == "t000", "train_s_per_1k_samples"].item() == pytest.approx(1000 / 400)
    # price: 2 CPUs x 0.05 per hour
    assert t.loc[t.trial_id == "t000", "train_cost"].item() == pytest.approx(200 / 3600 * 0.1)
    rate = t.loc[t.trial_id == "t000", "infer_reviews_per_s"].item()
    assert t.loc[t.trial_id == "t000", "cost_per_1m_reviews"].item() == pytest.approx(1e6 / rate / 3600 * 0.1)
    assert sorted(t.loc[t.collapsed, "trial_id"]) == ["t008", "t009", "t010", "t011"]


def test_fronts_only_finished(written):
    out, _ = written
    doc = json.loads((out / "pareto.json").read_text())
    assert doc["accuracy"] == "val_acc"
    fronts = {cost: [p["trial_id"] for p in points] for cost, points in doc["fronts"].items()}
    assert set(fronts) >= {"train_time_s", "params_no_embedding", "train_s_per_1k_samples", "peak_rss_mb",
                           "infer_ms_per_review", "batch_ms_per_review", "train_cost", "cost_per_1m_reviews"}
    frame = make_frame()
    finished = set(frame.loc[(frame.status == "TERMINATED") & frame.repeat_of.isna(), "trial_id"])
    for ids in fronts.values():
        assert ids and set(ids) <= finished          # t021 (running, 0.99) and repeats never enter
    # fasttext t020: three runs, val 0.84, 0.83, 0.85; test 0.78, 0.79, 0.77
    [t020] = [p for p in doc["fronts"]["train_time_s"] if p["trial_id"] == "t020"]
    assert t020["n_runs"] == 3 and t020["val_acc_mean"] == pytest.approx(0.84)
    assert t020["test_acc_mean"] == pytest.approx(0.78) and 0.03 < t020["val_acc_ci95"] < 0.1
    assert t020["train_time_s"] == pytest.approx(25.0)
    # the front's most accurate end is the best on validation; selected on test it would be another trial
    search = frame[(frame.status == "TERMINATED") & frame.repeat_of.isna()]
    assert fronts["train_time_s"][-1] == search.sort_values("val_acc").trial_id.iloc[-1]
    assert fronts["train_time_s"][-1] != search.sort_values("test_acc").trial_id.iloc[-1]
    # the constant predictor anchors every front; the collapsed LSTMs (0.33) lie below it
    assert doc["anchor"]["val_acc"] == 0.5 and doc["anchor"]["cost"] == 0
    assert {"t008", "t009", "t010", "t011"} <= set(doc["below_constant"])
    tests = {(x["a"], x["b"]): x for x in doc["paired_tests"]}
    cnn_best = search[search.arch == "cnn"].sort_values("val_acc").trial_id.iloc[-1]
    x = tests.get(("t020", cnn_best)) or tests[(cnn_best, "t020")]
    sign = 1 if x["a"] == "t020" else -1
    assert x["runs_a" if sign > 0 else "runs_b"] == 3
    assert sign * x["diff"] == pytest.approx(0.78 - (1.6 - search.set_index("trial_id").val_acc[cnn_best]), abs=1 / 600)


def test_summary_table(written):
    out, _ = written
    md = (out / "summary.md").read_text()
    frame = make_frame()
    done = frame[frame.status == "TERMINATED"]
    header = next(line for line in md.splitlines() if line.startswith("| | "))
    assert header == "| | cnn | fasttext | lstm |"
    for row in ("Training time", "Epoch time", "Num epochs", "Samples/s", "Max params per layer",
                "Total params", "Params without embeddings", "Test accuracy", "Val accuracy"):
        assert any(line.startswith(f"| {row}") for line in md.splitlines()), row
    best_cnn = done[done.arch == "cnn"].sort_values("val_acc").iloc[-1]
    assert best_cnn.test_acc == done[done.arch == "cnn"].test_acc.min()     # the fixture discriminates
    test_row = next(line for line in md.splitlines() if line.startswith("| Test accuracy"))
    assert f"{best_cnn.test_acc:.3f}" in test_row.split("|")[2]
    # frozen vs fine-tuned: each side's best on validation, shown with its (then worst) test accuracy
    for flag, name in ((True, "frozen"), (False, "fine-tuned")):
        side = done[(done.arch == "cnn") & (done["config/freeze_embeddings"] == flag)]
        row = next(line for line in md.splitlines() if line.startswith(f"| cnn | default | {name} |"))
        assert f"{side.sort_values('val_acc').test_acc.iloc[-1]:.3f}" == row.split("|")[6].strip()
    assert "TERMINATED 21" in md and "ERROR 1" in md and "RUNNING 1" in md and "PENDING 1" in md
    noise_md = md.split("## Noise")[1].split("\n## ")[0]
    assert "Repeats: 2 runs of 1 configurations" in noise_md
    assert re.search(r"- (fasttext `t020` vs cnn `t0\d\d`|cnn `t0\d\d` vs fasttext `t020`): [+-]\d+\.\d points on "
                     r"test, distinguishable from noise \(p [=<] ", noise_md)
    assert "within noise" in noise_md          # adjacent fasttext front members differ by 1 point
    assert "`t022`" in md.split("## Failed trials")[1]           # the failed LSTM is listed
    # fasttext's finished trials were all frozen; its one fine-tuned trial is still pending
    assert "| fasttext | default | fine-tuned | 0 / 0 / 1 | no result yet |" in md
    assert "| cnn | default | frozen | 0 / 0 / 4 | 0.832 |" in md  # epochs 4 of 10, no mark: stopped-short
    collapsed = md.split("## Collapsed trials")[1]
    assert "`t008`" in collapsed and "python -m study diagnose" in collapsed
    assert "cheaper in train_time_s" in md


def test_summary_links_diagnosis(tmp_path):
    (tmp_path / "diagnosis.md").write_text("# diagnosis\n")
    report.write_report(make_frame(), tmp_path)
    assert "[diagnosis.md](diagnosis.md)" in (tmp_path / "summary.md").read_text()


def test_empty_and_failed_only_study(tmp_path):
    frame = pd.DataFrame([{"trial_id": "x1", "arch": "lstm", "status": "ERROR"},
                          {"trial_id": "x2", "arch": "cnn", "status": "PENDING"}])
    files = report.write_report(frame, tmp_path)
    assert json.loads(files["pareto.json"].read_text())["fronts"]["train_time_s"] == []
    assert "No repeats" in files["summary.md"].read_text()
    md = files["summary.md"].read_text()
    assert "No finished trial" in md and "`x1`" in md
    assert "x1" in files["pareto.html"].read_text()


@pytest.mark.slow
def test_report_on_a_real_small_study(synthetic_store, tmp_path, capsys):
    """Ray Tune study (one trial per architecture, one epoch) -> `study report` -> the original study table.
    The study runs as a user would, in its own process with a private Ray (tests/helpers.py)."""
    from study.__main__ import main as cli

    args = ["run", "--store", synthetic_store, "--name", "rep", "--storage-path", str(tmp_path / "exp"),
            "--num-samples", "1", "--max-epochs", "1"]
    for arch in ("cnn", "lstm", "fasttext"):
        args += ["--space", str(ROOT / "search_spaces" / f"{arch}.yaml")]
    assert helpers.run(helpers.study_cmd(*args), helpers.ray_env(), tmp_path / "study.log", timeout=600) == 0
    out = tmp_path / "report"
    assert cli(["report", "--storage-path", str(tmp_path / "exp"), "--name", "rep", "--out", str(out)]) == 0
    t = pd.read_parquet(out / "trials.parquet")
    assert sorted(t["arch"]) == ["cnn", "fasttext", "lstm"] and set(t["status"]) == {"TERMINATED"}
    assert t[["val_acc", "test_acc", "train_time_s", "params_no_embedding"]].notna().all().all()
    md = (out / "summary.md").read_text()
    assert "| | cnn | fasttext | lstm |" in md
    fronts = json.loads((out / "pareto.json").read_text())["fronts"]
    assert all({p["trial_id"] for p in pts} <= set(t["trial_id"]) for pts in fronts.values())
