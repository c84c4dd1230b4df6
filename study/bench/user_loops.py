"""What a user would write: the textbook PyTorch loops for a Kim CNN and for fastText, to measure ours against.

- ``kim_conv1d_loop``: ``nn.Conv1d`` per width (3,4,5 x 100), relu, max over time, dropout 0.5, linear;
  the word embedding fine-tuned with dense gradients and one ``Adam`` over everything; shuffled batches
  (no length bucketing) padded to each batch's longest review, pads included in the max.
- ``embedding_bag_loop``: the model of PyTorch's text classification tutorial (``nn.EmbeddingBag`` in
  mean mode over the concatenated ids of a batch plus offsets, then ``nn.Linear``), trained as the
  tutorial does: SGD at lr 5, gradients clipped to norm 0.1.

Both start from the store's vectors and time whole steps (batch, forward, backward, optimizer), like
``throughput.bench``; the result has the same keys (``samples_per_s``, ``tokens_per_s``, ...).

    from study.bench.user_loops import kim_conv1d_loop, embedding_bag_loop
    kim_conv1d_loop(store, samples=128, batch_size=50)
    embedding_bag_loop(store, samples=2048, batch_size=32)
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_prep.store import Store
from study.train.batches import Batcher


class KimConv1d(nn.Module):
    def __init__(self, vectors: np.ndarray, num_classes: int, widths=(3, 4, 5), filters: int = 100):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(torch.tensor(vectors), freeze=False)
        self.convs = nn.ModuleList(nn.Conv1d(vectors.shape[1], filters, w) for w in widths)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(filters * len(widths), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids).transpose(1, 2)  # (B, D, T)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))


class TextClassificationModel(nn.Module):
    """PyTorch's text classification tutorial model."""

    def __init__(self, vectors: np.ndarray, num_classes: int):
        super().__init__()
        self.embedding = nn.EmbeddingBag.from_pretrained(torch.tensor(vectors), freeze=False, sparse=False)
        self.fc = nn.Linear(vectors.shape[1], num_classes)

    def forward(self, text: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(text, offsets))


def _timed(steps: int, warmup: int, batches: list[np.ndarray], step: Callable[[np.ndarray], None],
           lengths: np.ndarray) -> tuple[float, int, int]:
    done = tokens = 0
    for i in range(warmup):
        step(batches[i % len(batches)])
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        rows = batches[i % len(batches)]
        step(rows)
        done += len(rows)
        tokens += int(lengths[rows].sum())
    return time.perf_counter() - start, done, tokens


def _shuffled(store: Store, batch_size: int, seed: int) -> list[np.ndarray]:
    rows = store.indices("train")
    rows = rows[np.random.default_rng(seed).permutation(len(rows))]
    return [rows[i:i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]


def _result(name: str, seconds: float, done: int, tokens: int, batch_size: int, extra: dict) -> dict:
    return {"preset": name, "samples_per_s": done / seconds, "tokens_per_s": tokens / seconds,
            "samples": done, "seconds": seconds, "batch_size": batch_size, "seq_len_mean": tokens / done,
            "device": "cpu", "threads": torch.get_num_threads(), **extra}


def kim_conv1d_loop(store: Store, *, samples: int, batch_size: int = 50, warmup: int = 2, seed: int = 0) -> dict:
    """Time ``samples`` training samples of the plain Conv1d Kim CNN (see the module docstring)."""
    torch.manual_seed(seed)
    model = KimConv1d(store.embeddings, store.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batcher = Batcher(store, padding="post", min_width=5)
    batches = _shuffled(store, batch_size, seed)
    padded = []

    def step(rows: np.ndarray) -> None:
        ids, _, labels = batcher.make(rows)
        padded.append(ids.shape[1] * len(rows))
        optimizer.zero_grad()
        F.cross_entropy(model(ids), labels).backward()
        optimizer.step()

    steps = -(-samples // batch_size)
    seconds, done, tokens = _timed(steps, warmup, batches, step, batcher.lengths)
    return _result("kim_conv1d_loop", seconds, done, tokens, batch_size,
                   {"padded_len_mean": sum(padded[warmup:]) / done})


def embedding_bag_loop(store: Store, *, samples: int, batch_size: int = 32, warmup: int = 2, seed: int = 0) -> dict:
    """Time ``samples`` training samples of the tutorial's EmbeddingBag model (see the module docstring)."""
    torch.manual_seed(seed)
    model = TextClassificationModel(store.embeddings, store.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
    tokens_flat, offsets_all = store.tokens, store.offsets
    lengths = store.lengths
    batches = _shuffled(store, batch_size, seed)

    def step(rows: np.ndarray) -> None:
        # The tutorial's collate_batch: the reviews' ids concatenated, each review's start offset.
        text = torch.from_numpy(np.concatenate([tokens_flat[offsets_all[r]:offsets_all[r + 1]] for r in rows])
                                .astype(np.int64))
        offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths[rows])[:-1]]).astype(np.int64))
        labels = torch.from_numpy(store.labels[rows].astype(np.int64))
        optimizer.zero_grad()
        F.cross_entropy(model(text, offsets), labels).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()

    steps = -(-samples // batch_size)
    seconds, done, tokens = _timed(steps, warmup, batches, step, lengths)
    return _result("embedding_bag_loop", seconds, done, tokens, batch_size, {"padded_len_mean": tokens / done})
