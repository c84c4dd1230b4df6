"""The plain trainer: one config, one store, per-epoch metrics; no Ray.

    from study.train.trainer import TrainConfig, train
    history = train(TrainConfig.from_flat(preset("cnn_original")), store_mod.load("/tmp/imdb1k"), threads=2)


Training batches are length-bucketed (see batches.py) and reshuffled every epoch; evaluation runs in sorted
batches under ``torch.inference_mode``. Fine-tuned embeddings get sparse gradients and SparseAdam (only
the rows in a batch are touched); all other parameters get Adam/AdamW, with optional clipping of their
global norm (the embedding's sparse rows are not clipped). CUDA runs under autocast (bf16, or fp16 with
a GradScaler). On the CPU a run is seeded and deterministic for a fixed thread count, and a run resumed
from ``get_state()`` after epoch k produces exactly the metrics of an uninterrupted run.

``faithful=True`` reproduces the original study: softmax before CrossEntropyLoss (train and validation loss), every
review padded (post) to the store's longest, one dense Adam over all parameters including the 500-d
embedding, and the CNN's zero-padded full convolution with max over all positions. Batch size is the
config's (the ``*_faithful`` presets set the original study's 1 or 32). Shuffling stays on unless ``shuffle=False``:
the original study's rows were class-ordered only before ``train_test_split`` shuffled them. Two of these mistakes
can also be switched on alone (the diagnosis ablates them one at a time): ``softmax_loss`` and
``pad_to_longest``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
import random
import resource
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from data_prep import store as store_mod
from study.train.batches import Batcher
from study.train.config import TrainConfig
from study.train.metrics import classification_metrics
from study.train.models import build_model, count_params

EVAL_BATCH = 128
CHECKPOINT_FILE = "checkpoint.pt"

__all__ = ["TrainConfig", "Session", "train", "evaluate", "Evaluation", "save_checkpoint",
           "load_checkpoint", "resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Session:
    """Model, optimizers, loss and batcher for one config on one device; training one step at a time."""

    def __init__(self, cfg: TrainConfig, store: store_mod.Store, device: torch.device):
        if store.embeddings is None:
            raise ValueError("the store was loaded without embeddings")
        self.cfg, self.device, self.num_classes = cfg, device, store.num_classes
        self.model = build_model(cfg, store.embeddings, store.num_classes).to(device)
        longest = int(store.lengths.max(initial=1)) if cfg.max_len <= 0 else min(int(store.lengths.max(initial=1)), cfg.max_len)
        pad_to = longest if cfg.pads_to_longest else 0
        self.batcher = Batcher(store, padding=cfg.padding, max_len=cfg.max_len, pad_to=pad_to,
                               min_width=self.model.min_width, buckets=cfg.length_buckets)
        sparse = [p for m in self.model.modules() if getattr(m, "sparse", False)
                  for p in m.parameters(recurse=False) if p.requires_grad]
        dense = [p for p in self.model.parameters() if p.requires_grad and all(p is not s for s in sparse)]
        self.dense_params = dense
        dense_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        # CUDA: the fused kernel updates all dense parameters in one launch (a step is launch-bound there).
        fused = {"fused": True} if device.type == "cuda" and dense else {}
        self.optimizers = [dense_cls(dense, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)]
        if sparse:
            self.optimizers.append(torch.optim.SparseAdam(sparse, lr=cfg.lr))
        self.amp_dtype = None
        if device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        logits = logits.float()
        if self.cfg.softmax_before_loss:
            logits = torch.softmax(logits, dim=1)  # the original study's mistake: CE then applies log-softmax again
        return F.cross_entropy(logits, labels, reduction=reduction)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                            enabled=self.amp_dtype is not None):
            return self.model(ids, lengths)

    def to_device(self, rows: np.ndarray):
        if self.device.type != "cuda":
            return self.batcher.make(rows)
        # Pinned host memory makes the copies truly asynchronous: the host goes on queueing kernels.
        return (t.pin_memory().to(self.device, non_blocking=True) for t in self.batcher.make(rows))

    def step(self, rows: np.ndarray) -> torch.Tensor:
        """One optimizer step on these rows; returns the summed loss (a 0-d tensor, not synced)."""
        ids, lengths, labels = self.to_device(rows)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        loss = self.loss(self.forward(ids, lengths), labels)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            for opt in self.optimizers:
                self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.dense_params, self.cfg.grad_clip)
        for opt in self.optimizers:
            self.scaler.step(opt)
        self.scaler.update()
        return loss.detach() * len(rows)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers],
                "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


@dataclass(frozen=True)
class Evaluation:
    """The model's raw outputs on some rows, in the order evaluated (sorted by length)."""

    loss: float            # mean loss (the config's loss, softmax-before-loss included)
    logits: np.ndarray     # (N, C) float32
    labels: np.ndarray     # (N,) int64

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.preds == self.labels).mean()) if len(self.labels) else float("nan")


@torch.inference_mode()
def evaluate(session: Session, rows: np.ndarray) -> Evaluation:
    """The one evaluation pass: loss, logits and labels over these rows (the model is left as it was)."""
    model = session.model
    was_training = model.training
    model.eval()
    total, logits, labels = torch.zeros((), device=session.device), [], []
    for batch in session.batcher.eval_plan(rows, EVAL_BATCH):
        ids, lengths, y = session.to_device(batch)
        out = session.forward(ids, lengths).float()
        total += session.loss(out, y, reduction="sum")
        logits.append(out.cpu())
        labels.append(y.cpu())
    model.train(was_training)
    if not logits:
        return Evaluation(float("nan"), np.zeros((0, session.num_classes), np.float32), np.zeros(0, np.int64))
    return Evaluation(float(total) / len(rows), torch.cat(logits).numpy(), torch.cat(labels).numpy())


def _rng_state(rng: np.random.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state,
            "python": list(random.getstate()[1]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _restore_rng(state: dict, rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["numpy"]
    random.setstate((3, tuple(state["python"]), None))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(cfg: TrainConfig, store: store_mod.Store, *, device=None, threads: int | None = None,
          resume: dict | None = None, on_epoch: Callable[[dict, Callable[[], dict]], None] | None = None,
          log: Callable[[str], None] | None = None) -> list[dict]:
    """Train ``cfg`` on ``store``; returns the per-epoch metrics (including resumed ones)."""
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    session = Session(cfg, store, device)
    params = count_params(session.model)
    history, start = [], 0
    if resume is not None:
        session.load_state(resume)
        _restore_rng(resume["rng"], rng)
        history, start = [dict(m) for m in resume["history"]], int(resume["epoch"])
    train_rows, val_rows, test_rows = (store.indices(s) for s in store_mod.SPLITS)
    if len(train_rows) == 0:
        raise ValueError("the store has no training rows")
    session.model.train()
    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for rows in session.batcher.plan(train_rows, cfg.batch_size, rng if cfg.shuffle else None):
            total += session.step(rows)
        train_loss = float(total) / len(train_rows)  # syncs the device
        train_s = time.perf_counter() - t0
        val = evaluate(session, val_rows)
        test = evaluate(session, test_rows)
        epoch_s = time.perf_counter() - t0
        metrics = {"epoch": epoch, "train_loss": train_loss, "val_loss": val.loss, "val_acc": val.accuracy,
                   **classification_metrics(test.labels, test.preds, store.num_classes),
                   "samples_per_s": len(train_rows) / train_s, "epoch_time_s": epoch_s,
                   "train_time_s": epoch_s + (history[-1]["train_time_s"] if history else 0.0),
                   **params, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "device": device.type, "threads": torch.get_num_threads()}
        history.append(metrics)
        if log:
            log(f"epoch {epoch}/{cfg.epochs} train_loss {train_loss:.4f} val_loss {val.loss:.4f} "
                f"val_acc {metrics['val_acc']:.3f} test_acc {metrics['test_acc']:.3f} "
                f"macro_f1 {metrics['macro_f1']:.3f} majority {metrics['majority_share']:.2f} "
                f"{metrics['samples_per_s']:.0f} samples/s {epoch_s:.1f}s")
        if on_epoch:
            def get_state(epoch=epoch) -> dict:
                return copy.deepcopy({**session.state(), "epoch": epoch, "rng": _rng_state(rng),
                                      "history": history, "config": cfg.to_flat()})
            on_epoch(metrics, get_state)
    return history


def save_checkpoint(state: dict, directory: str | Path) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically (write, then rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(directory / CHECKPOINT_FILE)
    return directory / CHECKPOINT_FILE


def load_checkpoint(directory: str | Path) -> dict:
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in {directory}")
    return torch.load(path, map_location="cpu", weights_only=True)
