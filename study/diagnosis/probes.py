"""Probes of a trained text classifier: the evidence behind the LSTM diagnosis (command.py).

Each probe answers one question about a model trained by ``study.train.trainer`` and returns a JSON-able dict:

    session = Session(cfg, store, torch.device("cpu")); session.load_state(state)
    ev = evaluate(session, store.indices("test"))  # study.train.trainer: the one evaluation pass
    prediction_histogram(ev.preds, store.num_classes)  # one class only? (entropy in bits)
    logit_spread(ev.logits, ev.labels)         # does the output depend on the input, and on its label?
    readout_padding(session, rows)             # how many pad steps lie between the text and the readout?
    gradient_by_position(session, rows)        # does the loss gradient reach the words, or only the pads?
    loss_curve(history, num_classes)           # did the training loss ever leave ln(K)?
"""
from __future__ import annotations

import math

import numpy as np
import torch

EDGE_STEPS = 10  # "first" and "last" real time steps compared by the gradient probe


def prediction_histogram(preds: np.ndarray, num_classes: int) -> dict:
    """Predictions per class, the majority share and the entropy of the predicted-class distribution."""
    hist = np.bincount(np.asarray(preds, dtype=np.int64), minlength=num_classes)[:num_classes]
    share = hist / max(hist.sum(), 1)
    nonzero = share[share > 0]
    return {"pred_hist": [int(c) for c in hist], "majority_share": float(share.max(initial=0.0)),
            "pred_entropy_bits": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,
            "max_entropy_bits": float(math.log2(num_classes))}


def label_auc(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC of each class logit for its class: 0.5 when the output is unrelated to the
    label (whatever else it varies with), 1.0 when it ranks every review of the class first."""
    aucs = []
    for c in range(logits.shape[1]):
        pos, neg = labels == c, labels != c
        if pos.any() and neg.any():
            _, where, counts = np.unique(logits[:, c], return_inverse=True, return_counts=True)
            ranks = (np.cumsum(counts) - (counts - 1) / 2)[where]  # 1..N, ties get their average rank
            aucs.append((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))
    return float(np.mean(aucs)) if aucs else float("nan")


def logit_spread(logits: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """How much each class logit varies across inputs, relative to its size.

    A model that ignores its input gives (nearly) the same logits for every review: the per-class standard
    deviation over inputs is then tiny next to the mean magnitude (``spread_ratio`` near 0).
    """
    logits = np.asarray(logits, dtype=np.float64)  # (N, C)
    std = logits.std(axis=0)  # (C,)
    mean_abs = np.abs(logits).mean(axis=0)  # (C,)
    margin = logits.max(axis=1) - np.sort(logits, axis=1)[:, -2] if logits.shape[1] > 1 else np.zeros(len(logits))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return {"logit_std": [float(s) for s in std], "logit_mean_abs": [float(m) for m in mean_abs],
            "spread_ratio": float(std.mean() / max(mean_abs.mean(), 1e-12)),
            "prob_std": float(probs.std(axis=0).mean()),  # 0 when every input gets the same probabilities
            "mean_top_margin": float(margin.mean()),
            **({"label_auc": label_auc(logits, np.asarray(labels))} if labels is not None else {})}


def readout_positions(lengths: np.ndarray, width: int, padding: str, readout: str) -> np.ndarray:
    """Pad steps between each sequence's last real token and the position its output is read from.

    Only the original study's ``last_step`` readout reads a fixed position (the last of the padded width); with
    post-padding that lies ``width - length`` pad steps after the text. Every other readout (and pre-padding)
    reads at or over the real tokens: 0 pad steps.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if readout == "last_step" and padding == "post":
        return np.maximum(width - lengths, 0)
    return np.zeros_like(lengths)


def readout_padding(session, rows: np.ndarray, batch_size: int = 128) -> dict:
    """Share of these rows whose readout position is a pad token, and the mean pad steps before it,
    from the (truncated) store lengths and the session's real padding plan (its batch widths)."""
    cfg, batcher = session.cfg, session.batcher
    readout = getattr(cfg.model, "readout", "final_state")  # only the LSTM has a readout key
    pads, lengths, widths = [], [], []
    for batch in batcher.eval_plan(rows, batch_size):
        width = batcher.width(batch)
        pads.append(readout_positions(batcher.lengths[batch], width, cfg.padding, readout))
        lengths.append(batcher.lengths[batch])
        widths.append(np.full(len(batch), width))
    pads, lengths, widths = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (pads, lengths, widths))
    on_pad = pads > 0
    return {"padding": cfg.padding, "readout": readout, "mean_width": float(widths.mean()) if len(widths) else 0.0,
            "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
            "readout_on_pad_share": float(on_pad.mean()) if len(pads) else 0.0,
            "mean_pad_steps_before_readout": float(pads.mean()) if len(pads) else 0.0,
            "mean_pad_steps_when_on_pad": float(pads[on_pad].mean()) if on_pad.any() else 0.0}


def gradient_by_position(session, rows: np.ndarray, batch_size: int = 32, edge: int = EDGE_STEPS) -> dict:
    """Norm of d(loss)/d(embedded input) per time step: at the first real steps, the last real steps and
    the pad steps (mean L2 norm over (sample, step) pairs), plus the norm reaching the embedding table.

    The embedded input (B, T, D) is caught by a forward pre-hook on ``model.lstm``. Where the readout sits
    hundreds of pad steps after the text, the gradient vanishes before it reaches the words.
    """
    model = session.model
    if not hasattr(model, "lstm"):
        return {"skipped": "not an LSTM"}
    caught = []

    def hook(_module, args):
        x = args[0]
        if isinstance(x, torch.Tensor) and x.requires_grad:
            x.retain_grad()
            caught.append(x)

    was_training = model.training
    model.eval()  # no dropout: the gradient of the model as evaluated
    handle = model.lstm.register_forward_pre_hook(hook)
    sums = {"first": 0.0, "last": 0.0, "pad": 0.0}
    counts = {"first": 0, "last": 0, "pad": 0}
    table_sq = 0.0
    try:
        for batch in session.batcher.eval_plan(rows, batch_size):
            caught.clear()
            model.zero_grad(set_to_none=True)
            ids, lengths, labels = session.to_device(batch)
            session.loss(session.forward(ids, lengths), labels).backward()
            if not caught or caught[0].grad is None:
                return {"skipped": "the LSTM input is packed or not differentiable here"}
            norms = caught[0].grad.float().norm(dim=2).cpu()  # (B, T)
            width = norms.shape[1]
            lengths = lengths.clamp(min=1).cpu()
            # Where the real tokens sit in the LSTM's input: the model left-aligns pre-padded input
            # except for the original study's last_step readout, which runs over the batch as padded.
            pre = session.cfg.padding == "pre" and getattr(model, "readout", "") == "last_step"
            start = (width - lengths) if pre else torch.zeros_like(lengths)  # (B,) first real step
            steps = torch.arange(width).unsqueeze(0)  # (1, T)
            offset = steps - start.unsqueeze(1)  # (B, T) position within the text
            real = (offset >= 0) & (offset < lengths.unsqueeze(1))
            groups = {"first": real & (offset < edge),
                      "last": real & (offset >= (lengths - edge).unsqueeze(1)),
                      "pad": ~real}
            for name, mask in groups.items():
                sums[name] += float(norms[mask].sum())
                counts[name] += int(mask.sum())
            grad = model.embedding.weight.grad
            if grad is not None:
                table_sq += float(grad.coalesce().values().norm() ** 2 if grad.is_sparse else grad.norm() ** 2)
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    mean = {name: sums[name] / counts[name] if counts[name] else 0.0 for name in sums}
    return {"grad_first_steps": mean["first"], "grad_last_real_steps": mean["last"],
            "grad_pad_steps": mean["pad"], "pad_step_count": counts["pad"], "edge_steps": edge,
            "first_over_last": mean["first"] / mean["last"] if mean["last"] > 0 else 0.0,
            "embedding_table_grad_norm": math.sqrt(table_sq)}


def loss_curve(history: list[dict], num_classes: int, softmax_loss: bool) -> dict:
    """Training loss per epoch against ln(K), the loss of a uniform prediction.

    With softmax before CrossEntropyLoss the loss cannot go below ln(1 + (K-1)/e) (0.313 for K = 2):
    the probabilities in [0, 1] are treated as logits, so even a perfect model stays far from 0.
    """
    ln_k = math.log(num_classes)
    losses = [float(m["train_loss"]) for m in history]
    floor = math.log(1 + (num_classes - 1) / math.e) if softmax_loss else 0.0
    return {"train_loss": losses, "ln_k": ln_k, "loss_floor": floor,
            "loss_vs_ln_k": losses[-1] / ln_k if losses else float("nan"),
            "moved_below_ln_k": bool(losses and min(losses) < ln_k - 0.05 * (ln_k - floor))}
