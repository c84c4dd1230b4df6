"""Trainer, config and batches on real (small) Parquet stores: learning, metrics, exact resume, CLI errors."""
from __future__ import annotations

import json
import numpy as np
import pytest
import torch

from data_prep import store as store_mod
from study.train import metrics as metrics_mod
from study.train.batches import Batcher
from study.train.config import TrainConfig
from study.train.row_adam import RowAdam
from study.train.trainer import Session, load_checkpoint, save_checkpoint, train

METRIC_KEYS = {"epoch", "train_loss", "val_loss", *metrics_mod.ACCURACY_KEYS, *metrics_mod.COST_KEYS,
               *metrics_mod.RUN_KEYS, "recall", "pred_hist", "majority_share", "params_total",
               "params_trainable", "params_no_embedding", "max_params_per_layer", "device", "threads"}
TIMING_KEYS = set(metrics_mod.COST_KEYS)
TINY_CNN = {"arch": "cnn", "widths": "2,3", "filters": 8, "activation": "relu", "dropout": 0.3, "lr": 0.02,
            "batch_size": 16, "epochs": 6, "seed": 3}


@pytest.fixture(scope="module")
def store(synthetic_store):
    return store_mod.load(synthetic_store)


# ---------------------------------------------------------------------------------------------- config

def test_from_flat_round_trip_and_widths_forms():
    cfg = TrainConfig.from_flat({"arch": "cnn", "widths": [3, 4, 5], "filters": "100", "lr": "1e-3"})
    assert cfg.model.widths == (3, 4, 5) and cfg.model.filters == 100 and cfg.lr == 0.001
    flat = cfg.to_flat()
    assert flat["widths"] == "3,4,5" and json.loads(json.dumps(flat)) == flat
    assert TrainConfig.from_flat(flat) == cfg


@pytest.mark.parametrize("flat,needle", [
    ({"arch": "cnn", "colour": 1}, "'colour'"),
    ({"arch": "cnn", "hidden_size": 8}, "a key of lstm"),
    ({"arch": "lstm", "widths": "3"}, "a key of cnn"),
    ({"arch": "rnn"}, "arch"),
    ({"arch": "lstm", "readout": "first"}, "readout"),
    ({"arch": "cnn", "filters": 2.5}, "filters"),
    ({"arch": "cnn", "freeze_embeddings": "maybe"}, "freeze_embeddings"),
    ({"arch": "cnn", "padding": "middle"}, "padding"),
])
def test_from_flat_rejects_bad_input(flat, needle):
    with pytest.raises(ValueError, match=needle):
        TrainConfig.from_flat(flat)


# --------------------------------------------------------------------------------------------- batches

@pytest.mark.parametrize("side", ["post", "pre"])
def test_batches_hold_the_store_tokens(store, side):
    batcher = Batcher(store, padding=side, max_len=25)
    rows = store.indices("train")[:20]
    ids, lengths, labels = batcher.make(rows)
    assert ids.shape == (20, int(min(store.lengths[rows].max(), 25)))
    for i, row in enumerate(rows):
        want = store.tokens[store.offsets[row]:store.offsets[row + 1]][:25]
        got = ids[i, :len(want)] if side == "post" else ids[i, ids.shape[1] - len(want):]
        assert got.tolist() == want.tolist() and int(lengths[i]) == len(want)
        assert int((ids[i] != 0).sum()) == len(want)
    assert labels.tolist() == store.labels[rows].tolist()


def test_bucketed_plan_covers_every_row_once_and_pads_little(store):
    batcher = Batcher(store)
    rows = store.indices("train")
    plan = batcher.plan(rows, 8, np.random.default_rng(0))
    assert sorted(np.concatenate(plan).tolist()) == sorted(rows.tolist())
    padded = sum(batcher.width(b) * len(b) for b in plan)
    unbucketed = sum(batcher.width(b) * len(b) for b in batcher.plan(rows, 8, None))
    assert padded < 0.8 * unbucketed
    assert batcher.plan(rows, 8, np.random.default_rng(1))[0].tolist() != plan[0].tolist()
    assert Batcher(store, pad_to=77).make(rows[:3])[0].shape == (3, 77)


# -------------------------------------------------------------------------------------------- training

def test_cnn_learns_and_reports_every_metric(store):
    history = train(TrainConfig.from_flat(TINY_CNN), store, device="cpu", threads=1)
    assert len(history) == 6 and set(history[-1]) == METRIC_KEYS
    last = history[-1]
    assert last["test_acc"] > 0.7 and last["val_acc"] > 0.6  # chance is 1/3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert sum(last["pred_hist"]) == len(store.indices("test")) and len(last["recall"]) == 3
    assert last["majority_share"] == max(last["pred_hist"]) / sum(last["pred_hist"])
    assert last["params_total"] == last["params_no_embedding"] + store.embeddings.size
    assert last["train_time_s"] >= last["epoch_time_s"] > 0 and last["threads"] == 1


@pytest.mark.parametrize("flat", [
    {"arch": "lstm", "hidden_size": 16, "num_layers": 1, "readout": "mean", "lr": 0.02, "grad_clip": 1.0},
    {"arch": "fasttext", "bigram_buckets": 64, "lr": 0.05},
])
def test_lstm_and_fasttext_learn(store, flat):
    history = train(TrainConfig.from_flat({**flat, "batch_size": 16, "epochs": 6}), store, device="cpu")
    assert history[-1]["test_acc"] > 0.6


def test_resumed_run_matches_an_uninterrupted_one(store, tmp_path):
    cfg = TrainConfig.from_flat({**TINY_CNN, "epochs": 3})
    full = train(cfg, store, device="cpu", threads=1)
    saved = []
    train(cfg.replace(epochs=1), store, device="cpu", threads=1,
          on_epoch=lambda m, get_state: saved.append(save_checkpoint(get_state(), tmp_path)))
    state = load_checkpoint(tmp_path)  # torch.load(weights_only=True)
    assert state["epoch"] == 1 and saved
    resumed = train(cfg, store, device="cpu", threads=1, resume=state)
    assert len(resumed) == 3
    for a, b in zip(full, resumed):
        assert {k: v for k, v in a.items() if k not in TIMING_KEYS} == \
               {k: v for k, v in b.items() if k not in TIMING_KEYS}


def test_fine_tuning_uses_sparse_gradients_and_frozen_embeddings_stay(store):
    cfg = TrainConfig.from_flat({**TINY_CNN, "epochs": 1})
    session = Session(cfg, store, torch.device("cpu"))
    assert any(isinstance(o, RowAdam) for o in session.optimizers)
    ids, lengths, labels = session.batcher.make(store.indices("train")[:8])
    session.loss(session.model(ids, lengths), labels).backward()
    assert session.model.embedding.weight.grad.is_sparse

    frozen = cfg.replace(freeze_embeddings=True)
    captured = {}
    train(frozen, store, device="cpu", on_epoch=lambda m, get_state: captured.update(get_state()))
    torch.testing.assert_close(captured["model"]["embedding.weight"][1:], torch.tensor(store.embeddings[1:]))


def test_faithful_mode_is_dense_and_pads_to_the_longest_review(store):
    cfg = TrainConfig.from_flat({**TINY_CNN, "faithful": True, "batch_size": 4, "epochs": 1})
    session = Session(cfg, store, torch.device("cpu"))
    assert len(session.optimizers) == 1 and isinstance(session.optimizers[0], torch.optim.Adam)
    assert session.batcher.make(store.indices("train")[:4])[0].shape[1] == int(store.lengths.max())
    logits = torch.tensor([[4.0, 0.0, 0.0]])
    # softmax before CrossEntropyLoss: the loss cannot go below log(1 + 2/e) even when confidently right
    assert float(session.loss(logits, torch.tensor([0]))) > 0.5
    assert train(cfg, store, device="cpu")[0]["epoch"] == 1


def test_fasttext_learns_on_real_imdb(imdb_store):
    real = store_mod.load(imdb_store)
    cfg = TrainConfig.from_flat({"arch": "fasttext", "lr": 0.03, "batch_size": 32, "epochs": 4, "max_len": 100})
    history = train(cfg, real, device="cpu")
    assert history[-1]["test_acc"] > 1.0 / real.num_classes + 0.15


# ------------------------------------------------------------------------------------------------- CLI

def test_cli_train_prints_epochs_then_json(synthetic_store, tmp_path, capsys):
    from study.__main__ import main
    args = ["train", "--store", synthetic_store, "--preset", "fasttext", "--epochs", "2", "--threads", "1",
            "--set", "lr=0.05", "--checkpoint-dir", str(tmp_path)]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("epoch 1/2") and lines[1].startswith("epoch 2/2")
    final = json.loads(lines[-1])
    assert final["config"]["lr"] == 0.05 and final["metrics"]["epoch"] == 2
    assert load_checkpoint(tmp_path)["epoch"] == 2
    assert main(args[:5] + ["--epochs", "3", *args[7:], "--resume"]) == 0  # continues with epoch 3 only
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("epoch 3/3") and json.loads(lines[-1])["metrics"]["epoch"] == 3


@pytest.mark.parametrize("args,needle", [
    (["--store", "/nonexistent/store", "--preset", "cnn_original"], "missing"),
    (["--preset", "no_such_preset"], "unknown preset"),
    (["--preset", "cnn_original", "--set", "hidden_size=3"], "hidden_size"),
    (["--preset", "cnn_original", "--set", "lr"], "key=value"),
])
def test_cli_bad_input_is_one_line_exit_2(synthetic_store, args, needle, capsys):
    from study.__main__ import main
    if "--store" not in args:
        args = ["--store", synthetic_store, *args]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
