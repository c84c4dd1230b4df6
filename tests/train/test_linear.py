"""The linear baseline (TF-IDF n-grams + logistic regression) on real small Parquet stores: it learns,
reports the trainer's metrics as one epoch, checkpoints without pickle, and refuses keys it does not use."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep import store as store_mod
from helpers import make_synthetic_store
from study.bench.throughput import bench
from study.train import linear
from study.train.config import TrainConfig
from study.train.presets import preset
from study.train.trainer import load_checkpoint, save_checkpoint, train

LINEAR_KEYS = {"epoch", "train_loss", "val_loss", "val_acc", "test_acc", "macro_f1", "recall", "pred_hist",
               "majority_share", "samples_per_s", "epoch_time_s", "train_time_s", "eval_time_s",
               "infer_ms_per_review", "infer_reviews_per_s", "params_total", "params_trainable",
               "params_no_embedding", "max_params_per_layer", "peak_rss_mb", "best_epoch", "device", "threads"}
TIMING_KEYS = {"samples_per_s", "epoch_time_s", "train_time_s", "eval_time_s", "infer_ms_per_review",
               "infer_reviews_per_s", "peak_rss_mb"}


@pytest.fixture(scope="module")
def store(synthetic_store):
    return store_mod.load(synthetic_store)  # 3 classes


@pytest.fixture(scope="module")
def binary_store(tmp_path_factory):
    path = make_synthetic_store(tmp_path_factory.mktemp("stores") / "binary", num_classes=2, per_class=80, seed=1)
    return store_mod.load(path, with_embeddings=False)  # the linear model needs no embeddings


def _flat(**changes) -> dict:
    return {**preset("linear"), "min_df": 1, **changes}


def test_three_classes_learn_one_vs_rest_and_report_every_metric(store):
    history = train(TrainConfig.from_flat(_flat()), store, device="cpu", threads=1)
    assert len(history) == 1 and set(history[0]) == LINEAR_KEYS
    m = history[0]
    assert m["test_acc"] > 0.7 and m["val_acc"] > 0.6  # chance is 1/3
    assert m["epoch"] == m["best_epoch"] == 1 and m["device"] == "cpu"
    assert sum(m["pred_hist"]) == len(store.indices("test")) and len(m["recall"]) == 3
    assert m["majority_share"] == max(m["pred_hist"]) / sum(m["pred_hist"])
    assert m["train_loss"] < m["val_loss"] < np.log(3)
    # three one-vs-rest problems over the same features: 3 x (features + 1) coefficients
    assert m["params_total"] % 3 == 0 and m["params_total"] == m["params_no_embedding"] > 3 * 100
    assert m["infer_ms_per_review"] > 0 and m["infer_reviews_per_s"] > 0 and m["eval_time_s"] > 0
    assert m["samples_per_s"] == pytest.approx(len(store.indices("train")) / m["train_time_s"])


def test_model_coefficients_count_the_ngrams(binary_store):
    cfg = TrainConfig.from_flat(_flat(ngram_max=1))
    rows = binary_store.indices("train")
    model = linear.LinearModel(cfg, 2).fit(linear._reviews(binary_store, rows), binary_store.labels[rows])
    words = len(np.unique(np.concatenate(linear._reviews(binary_store, rows))))
    assert model.weights.shape == (1, words) and model.params()["params_total"] == words + 1
    bigrams = linear.LinearModel(cfg.replace(ngram_max=2), 2).fit(
        linear._reviews(binary_store, rows), binary_store.labels[rows])
    assert bigrams.weights.shape[1] > words


def test_nb_scaling_changes_the_model_and_still_learns(binary_store):
    plain = train(TrainConfig.from_flat(_flat()), binary_store)[0]
    nb = train(TrainConfig.from_flat(_flat(nb_scaling=True)), binary_store)[0]
    assert nb["test_acc"] > 0.75 and plain["test_acc"] > 0.75
    assert nb["train_loss"] != plain["train_loss"]
    assert nb["params_total"] == plain["params_total"]  # the ratios are folded into the coefficients


def test_a_fit_is_deterministic_and_max_len_cuts_reviews(binary_store):
    cfg = TrainConfig.from_flat(_flat())
    a, b = (train(cfg, binary_store)[0] for _ in range(2))
    assert {k: v for k, v in a.items() if k not in TIMING_KEYS} == {k: v for k, v in b.items() if k not in TIMING_KEYS}
    short = linear.LinearModel(cfg.replace(max_len=3), 2)
    assert short.documents([np.array([5, 6, 7, 8, 9], np.int32)]) == ["5 6 7"]


def test_checkpoint_is_plain_data_and_a_finished_fit_is_not_redone(binary_store, tmp_path):
    cfg = TrainConfig.from_flat(_flat())
    saved = []
    history = train(cfg, binary_store, on_epoch=lambda m, get_state: saved.append(save_checkpoint(get_state(), tmp_path)))
    state = load_checkpoint(tmp_path)  # torch.load(weights_only=True): no pickled scikit-learn object
    assert saved and state["epoch"] == 1 and state["config"] == cfg.to_flat()
    json.dumps(state)
    with np.load(tmp_path / "predictions.npz") as saved_predictions:  # the report's paired tests read these
        right = saved_predictions["test_preds"] == saved_predictions["test_labels"]
        assert len(right) == len(binary_store.indices("test")) and right.mean() == history[0]["test_acc"]
    resumed = train(cfg, binary_store, resume=state)
    assert resumed == history  # timings included: the metrics of the finished fit, not a new fit


def test_linear_refuses_keys_of_the_torch_loop_and_round_trips():
    cfg = TrainConfig.from_flat(preset("linear"))
    assert TrainConfig.from_flat(cfg.to_flat()) == cfg and "batch_size" not in cfg.to_flat()
    assert cfg.replace(C=0.5).model.C == 0.5
    for key, value in (("lr", 0.1), ("freeze_embeddings", True), ("batch_size", 8)):
        with pytest.raises(ValueError, match=f"'{key}' does not apply to linear"):
            TrainConfig.from_flat({**preset("linear"), key: value})
    with pytest.raises(ValueError, match="C must be > 0"):
        TrainConfig.from_flat({**preset("linear"), "C": 0})
    with pytest.raises(ValueError, match="a key of linear"):
        TrainConfig.from_flat({"arch": "cnn", "ngram_max": 2})


def test_one_class_in_training_is_a_clear_error(binary_store):
    only_one = binary_store.with_split_codes(np.where(binary_store.labels == 0, binary_store.split_codes, -1))
    with pytest.raises(ValueError, match="no review of class 1"):
        train(TrainConfig.from_flat(_flat()), only_one)


def test_bench_times_one_whole_fit(binary_store):
    result = bench(TrainConfig.from_flat(_flat()), binary_store, samples=50, name="linear")
    assert result["samples"] == 50 and result["steps"] == 1 and result["preset"] == "linear"
    assert result["tokens_per_s"] == pytest.approx(result["samples_per_s"] * result["seq_len_mean"])


def test_cli_train_linear_prints_the_fit_then_json(synthetic_store, tmp_path, capsys):
    from study.__main__ import main
    args = ["train", "--store", synthetic_store, "--preset", "linear", "--set", "min_df=1",
            "--checkpoint-dir", str(tmp_path)]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("fit 1/1") and json.loads(lines[-1])["metrics"]["epoch"] == 1
    assert main(args + ["--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]["epoch"] == 1
    assert main(["train", "--store", synthetic_store, "--preset", "linear", "--set", "lr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "does not apply to linear" in err and len(err.strip().splitlines()) == 1
