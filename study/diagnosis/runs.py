"""One diagnosis run: one condition, one seed; the epoch curve, the best validation epoch, its test metrics.

    result = run_one({"store": "/tmp/imdb5k", "train_rows": 1000, "data_seed": 0, "test_cap": 0,
                      "flat": derive(base, {"readout": "final_state"}), "probe": False})

``run_one`` takes and returns plain dicts, so the same call runs in this process (``LocalRunner``) or as a
Ray task on any node (``study.search.fanout``); it loads the store itself (cached per process) and uses
one CPU thread. Each run validates after every epoch, keeps the model of its best validation epoch, and
evaluates the test split once, on that model: the trainer's ``train()`` would evaluate the test split
after every epoch, which at these sizes costs about as much as a training epoch. ``probe=True`` (the
baseline's runs) adds the probes of probes.py on that same model.
"""
from __future__ import annotations

import copy
import random
import time
from collections import deque

import numpy as np
import torch

from data_prep import store as store_mod
from study.diagnosis import probes
from study.diagnosis.plan import subsample
from study.train.config import TrainConfig
from study.train.metrics import classification_metrics
from study.train.models import count_params
from study.train.trainer import Session, evaluate

_STORES: dict[tuple, store_mod.Store] = {}


def load_store(path: str, train_rows: int, data_seed: int, test_cap: int) -> store_mod.Store:
    """The (sub-sampled) store, loaded once per process: a worker runs many conditions on it."""
    key = (path, train_rows, data_seed, test_cap)
    if key not in _STORES:
        _STORES.clear()  # one store at a time per worker
        _STORES[key] = subsample(store_mod.load(path), train_rows, data_seed, test_cap)
    return _STORES[key]


def _majority_share(preds: np.ndarray, num_classes: int) -> float:
    return float(np.bincount(preds, minlength=num_classes).max(initial=0) / max(len(preds), 1))


def train_run(cfg: TrainConfig, store: store_mod.Store, probe: bool = False) -> dict:
    """Train ``cfg`` (seeded like ``study.train.trainer.train``); judge it at its best validation epoch."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    session = Session(cfg, store, torch.device("cpu"))
    train_rows, val_rows, test_rows = (store.indices(s) for s in store_mod.SPLITS)
    curve, best, best_model = [], None, None
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        session.model.train()
        total = torch.zeros(())
        for rows in session.batcher.plan(train_rows, cfg.batch_size, rng if cfg.shuffle else None):
            total += session.step(rows)
        val = evaluate(session, val_rows)
        point = {"epoch": epoch, "train_loss": float(total) / len(train_rows), "val_loss": val.loss,
                 "val_acc": val.accuracy, "val_majority_share": _majority_share(val.preds, store.num_classes)}
        curve.append(point)
        if best is None or point["val_acc"] > best["val_acc"]:
            best, best_model = point, copy.deepcopy(session.model.state_dict())
    train_s = time.perf_counter() - started
    session.model.load_state_dict(best_model)
    test = evaluate(session, test_rows)
    scores = classification_metrics(test.labels, test.preds, store.num_classes)
    out = {"seed": cfg.seed, "best_epoch": best["epoch"], "val_acc": best["val_acc"],
           "test_acc": scores["test_acc"], "majority_share": scores["majority_share"],
           "macro_f1": scores["macro_f1"], "pred_hist": scores["pred_hist"],
           "last_val_acc": curve[-1]["val_acc"], "last_val_majority_share": curve[-1]["val_majority_share"],
           "curve": curve, "train_time_s": round(train_s, 1),
           "samples_per_s": round(cfg.epochs * len(train_rows) / max(train_s, 1e-9), 1),
           "params_no_embedding": count_params(session.model)["params_no_embedding"]}
    if probe:
        out["evidence"] = probe_session(session, store, test, curve)
        spread = out["evidence"]["logit_spread"]
        out.update(label_auc=spread["label_auc"], spread_ratio=spread["spread_ratio"])
    return out


def probe_session(session: Session, store: store_mod.Store, test, curve: list[dict]) -> dict:
    """The probes of probes.py on the session's model, ``test`` being its evaluation on the test split."""
    rows = store.indices("test")
    grad_rows = rows[np.random.default_rng(session.cfg.seed).permutation(len(rows))[:64]]
    return {"prediction_histogram": probes.prediction_histogram(test.preds, store.num_classes),
            "logit_spread": probes.logit_spread(test.logits, test.labels),
            "readout_padding": probes.readout_padding(session, rows),
            "gradient_by_position": probes.gradient_by_position(session, grad_rows),
            "loss_curve": probes.loss_curve(curve, store.num_classes,
                                            softmax_loss=session.cfg.softmax_before_loss)}


def run_one(spec: dict) -> dict:
    """One run from a plain spec (store, train_rows, data_seed, test_cap, flat, probe); one CPU thread."""
    torch.set_num_threads(int(spec.get("threads", 1)))
    store = load_store(spec["store"], spec["train_rows"], spec["data_seed"], spec["test_cap"])
    return train_run(TrainConfig.from_flat(spec["flat"]), store, probe=spec.get("probe", False))


class LocalRunner:
    """Runs the submitted calls in this process, one after another, in submission order: the in-process
    twin of ``study.search.fanout.Fanout`` (same methods), for small stores and tests."""

    workers = 1

    def __init__(self):
        self._pending: deque = deque()

    def submit(self, key, fn, arg) -> None:
        self._pending.append((key, fn, arg))

    def next_done(self, timeout_s: float | None = None):
        """(key, result, error message or None), or None when nothing is left."""
        if not self._pending:
            return None
        key, fn, arg = self._pending.popleft()
        try:
            return key, fn(arg), None
        except Exception as exc:  # a failed run is reported in the table, the others go on
            return key, None, f"{type(exc).__name__}: {exc}"

    def cancel_pending(self) -> list:
        keys = [key for key, *_ in self._pending]
        self._pending.clear()
        return keys

    def close(self) -> None:
        self._pending.clear()
