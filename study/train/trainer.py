"""The plain trainer: one config, one store, per-epoch metrics; no Ray.

    from study.train.trainer import TrainConfig, train
    history = train(TrainConfig.from_flat(preset("cnn_original")), store_mod.load("/tmp/imdb1k"), threads=2)


Costs are the trial's alone (keys in ``study.train.metrics.COST_KEYS``): ``train_time_s`` times only the
training steps; validation, and the test split (evaluated only at an epoch where validation accuracy
improves), go to ``eval_time_s``; serving speed is measured once after the first epoch; the peak resident
memory is reset when training starts. Every epoch reports the best epoch so far (``val_acc``,
``best_epoch``, the test metrics at that epoch); its per-review predictions travel in the checkpoint and
are written beside it as ``predictions.npz``.

Training batches are length-bucketed (see batches.py) and reshuffled every epoch; evaluation runs in sorted
batches under ``torch.inference_mode``. Fine-tuned embeddings get sparse gradients and ``row_adam.RowAdam``
(SparseAdam's update: only the rows in a batch are touched); all other parameters get Adam/AdamW, with
optional clipping of their global norm (the embedding's sparse rows are not clipped). CUDA runs under autocast
(bf16, or fp16 with a GradScaler). On the CPU a run is seeded and deterministic for a fixed thread count, and a
run resumed from ``get_state()`` after epoch k produces exactly the metrics of an uninterrupted run.

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
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from data_prep import store as store_mod
from study.train.batches import Batcher
from study.train.config import TrainConfig
from study.train.metrics import classification_metrics, peak_rss_mb, predictions_by_row, reset_peak_rss
from study.train.models import build_model, count_params
from study.train.row_adam import RowAdam

EVAL_BATCH = 128
CHECKPOINT_FILE = "checkpoint.pt"
PREDICTIONS_FILE = "predictions.npz"
INFER_SAMPLE = 100      # test reviews timed one at a time (the median is reported)
INFER_BATCH, INFER_BATCHES = 256, 4

__all__ = ["TrainConfig", "Session", "train", "evaluate", "Evaluation", "measure_inference",
           "save_checkpoint", "load_checkpoint", "resolve_device"]


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
            self.optimizers.append(RowAdam(sparse, lr=cfg.lr))
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
    rows: np.ndarray       # (N,) int64: the store row of each output

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
    plan = session.batcher.eval_plan(rows, EVAL_BATCH)
    for batch in plan:
        ids, lengths, y = session.to_device(batch)
        out = session.forward(ids, lengths).float()
        total += session.loss(out, y, reduction="sum")
        logits.append(out.cpu())
        labels.append(y.cpu())
    model.train(was_training)
    if not logits:
        return Evaluation(float("nan"), np.zeros((0, session.num_classes), np.float32), np.zeros(0, np.int64),
                          np.zeros(0, np.int64))
    return Evaluation(float(total) / len(rows), torch.cat(logits).numpy(), torch.cat(labels).numpy(),
                      np.concatenate(plan).astype(np.int64))


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


def measure_inference(session: Session, rows: np.ndarray) -> dict:
    """What serving costs: median ms per review at batch 1 (over up to ``INFER_SAMPLE`` of ``rows``) and
    reviews/s in batches of ``INFER_BATCH`` (the median over up to ``INFER_BATCHES`` batches, in the rows'
    own order, as they would arrive). Batch building and the host-device copy are part of serving, so they are timed."""
    if len(rows) == 0:
        return {"infer_ms_per_review": float("nan"), "infer_reviews_per_s": float("nan")}
    model, was_training = session.model, session.model.training
    model.eval()
    sync = torch.cuda.synchronize if session.device.type == "cuda" else (lambda: None)

    def serve(batch: np.ndarray) -> float:
        start = time.perf_counter()
        ids, lengths, _ = session.to_device(batch)
        session.forward(ids, lengths)
        sync()
        return time.perf_counter() - start

    with torch.inference_mode():
        serve(rows[:1])  # warm-up: first-call allocations are not the steady cost
        single = [serve(rows[i:i + 1]) for i in range(min(len(rows), INFER_SAMPLE))]
        batched = rows[:INFER_BATCH * INFER_BATCHES]
        # per batch, seconds per review; the median resists a busy machine's stalls, as for batch 1
        per_review = [serve(b) / len(b) for b in (batched[i:i + INFER_BATCH]
                                                  for i in range(0, len(batched), INFER_BATCH))]
    model.train(was_training)
    return {"infer_ms_per_review": 1000 * float(np.median(single)),
            "infer_reviews_per_s": 1.0 / float(np.median(per_review))}


@dataclass
class _Best:
    """The epoch with the best validation accuracy so far: its metrics and its per-review predictions."""

    metrics: dict            # val_acc, best_epoch, and the test split's metrics at that epoch
    predictions: dict        # val/test rows, labels and predictions at that epoch, in store row order

    @staticmethod
    def of(epoch: int, val: Evaluation, test: Evaluation, num_classes: int) -> "_Best":
        metrics = {"val_acc": val.accuracy, **classification_metrics(test.labels, test.preds, num_classes),
                   "best_epoch": epoch}
        predictions = {key: torch.from_numpy(values) for split, ev in (("val", val), ("test", test))
                       for key, values in predictions_by_row(split, ev.rows, ev.labels, ev.preds).items()}
        return _Best(metrics, predictions)

    def improved_by(self, val: Evaluation) -> bool:
        # NaN (an empty validation split) never counts as worse: then every epoch is evaluated on test
        return not val.accuracy <= self.metrics["val_acc"]


BEST_KEYS = ("val_acc", "test_acc", "macro_f1", "recall", "pred_hist", "majority_share", "best_epoch")


def train(cfg: TrainConfig, store: store_mod.Store, *, device=None, threads: int | None = None,
          resume: dict | None = None, on_epoch: Callable[[dict, Callable[[], dict]], None] | None = None,
          log: Callable[[str], None] | None = None) -> list[dict]:
    """Train ``cfg`` on ``store``; returns the per-epoch metrics (including resumed ones).

    Each epoch's metrics carry the best epoch so far (``val_acc``, the test metrics at that epoch,
    ``best_epoch``): what ASHA compares and what a stopped trial reports. The test split is evaluated only
    when validation accuracy improves. Costs are in ``metrics.COST_KEYS``."""
    if cfg.arch == "linear":  # no network: one scikit-learn fit on the CPU (linear.py)
        from study.train import linear
        return linear.train(cfg, store, resume=resume, on_epoch=on_epoch, log=log)
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    session = Session(cfg, store, device)
    params = count_params(session.model)
    reset_peak_rss()  # this trial's peak, not the worker's: Ray reuses the process for other trials
    history, start, best = [], 0, None
    if resume is not None:
        session.load_state(resume)
        _restore_rng(resume["rng"], rng)
        history, start = [dict(m) for m in resume["history"]], int(resume["epoch"])
        if history and resume.get("predictions"):
            best = _Best({k: history[-1][k] for k in BEST_KEYS}, resume["predictions"])
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
        t1 = time.perf_counter()
        val = evaluate(session, val_rows)
        if best is None or best.improved_by(val):
            best = _Best.of(epoch, val, evaluate(session, test_rows), store.num_classes)
        t2 = time.perf_counter()
        prev = history[-1] if history else {}
        # Serving speed depends on the architecture and its sizes, not on the weights: measured once, after
        # the first epoch, so a trial that ASHA stops early has it too. Its time counts in no cost.
        infer = {k: prev[k] for k in ("infer_ms_per_review", "infer_reviews_per_s")} if prev \
            else measure_inference(session, test_rows)
        train_s = prev.get("train_time_s", 0.0) + (t1 - t0)
        metrics = {"epoch": epoch, "train_loss": train_loss, "val_loss": val.loss, **best.metrics,
                   "train_time_s": train_s, "eval_time_s": prev.get("eval_time_s", 0.0) + (t2 - t1),
                   "epoch_time_s": t2 - t0, "samples_per_s": epoch * len(train_rows) / train_s, **infer,
                   **params, "peak_rss_mb": max(prev.get("peak_rss_mb", 0.0), peak_rss_mb()),
                   "seed": cfg.seed, "device": device.type, "threads": torch.get_num_threads()}
        history.append(metrics)
        if log:
            log(f"epoch {epoch}/{cfg.epochs} train_loss {train_loss:.4f} val_loss {val.loss:.4f} "
                f"val_acc {val.accuracy:.3f} (best {metrics['val_acc']:.3f} at epoch {metrics['best_epoch']}, "
                f"test_acc {metrics['test_acc']:.3f}, macro_f1 {metrics['macro_f1']:.3f}, majority "
                f"{metrics['majority_share']:.2f}) {len(train_rows) / (t1 - t0):.0f} samples/s "
                f"train {t1 - t0:.1f}s eval {t2 - t1:.1f}s")
        if on_epoch:
            def get_state(epoch=epoch, best=best) -> dict:
                return copy.deepcopy({**session.state(), "epoch": epoch, "rng": _rng_state(rng),
                                      "history": history, "config": cfg.to_flat(),
                                      "predictions": best.predictions})
            on_epoch(metrics, get_state)
    return history


def save_checkpoint(state: dict, directory: str | Path) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically (write, then rename), and the best epoch's
    per-review predictions to ``directory/predictions.npz`` (arrays ``{val,test}_{rows,labels,preds}``,
    in store row order)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if state.get("predictions"):  # beside the checkpoint, readable with numpy alone (the report's paired tests)
        tmp = directory / (PREDICTIONS_FILE + ".tmp.npz")
        np.savez(tmp, **{k: np.asarray(v) for k, v in state["predictions"].items()})  # tensors or lists
        tmp.replace(directory / PREDICTIONS_FILE)
    tmp = directory / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(directory / CHECKPOINT_FILE)
    return directory / CHECKPOINT_FILE


def load_checkpoint(directory: str | Path) -> dict:
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in {directory}")
    return torch.load(path, map_location="cpu", weights_only=True)
