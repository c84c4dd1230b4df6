"""Padded batches from the store's flat arrays, with length bucketing.

The store keeps every review unpadded in one flat ``tokens`` array (example i is
``tokens[offsets[i]:offsets[i+1]]``). A batch is cut out of it with one numpy fancy-indexing gather, no
per-example Python:

    batcher = Batcher(store, padding="post", max_len=400)
    for rows in batcher.plan(store.indices("train"), batch_size=64, rng=np.random.default_rng(0)):
        ids, lengths, labels = batcher.make(rows)   # (B, T) int64, (B,) int64, (B,) int64

Bucketing: the shuffled rows are cut into large chunks (``CHUNK_BATCHES`` batches each), each chunk is
sorted by length and cut into batches, and the order of all batches is shuffled. A batch is then padded
only to its own longest member, so little compute goes to pads, while every epoch still sees new batch
compositions. ``pad_to`` forces a fixed width instead (the original study padded everything to the longest review).
``buckets=False`` keeps the shuffled order as it is (the original study's batch composition).
"""
from __future__ import annotations

import numpy as np
import torch

from data_prep.store import PAD_ID, Store

CHUNK_BATCHES = 50  # batches per sorting chunk: larger = tighter buckets, less randomness


class Batcher:
    def __init__(self, store: Store, *, padding: str = "post", max_len: int = 0, pad_to: int = 0,
                 min_width: int = 1, buckets: bool = True):
        if padding not in ("post", "pre"):
            raise ValueError(f"padding must be post or pre, got {padding!r}")
        self.padding = padding
        self.tokens = store.tokens
        self.offsets = store.offsets
        self.labels = store.labels
        # Truncation keeps the first max_len tokens of each review.
        self.lengths = store.lengths if max_len <= 0 else np.minimum(store.lengths, max_len)
        self.pad_to = int(pad_to)
        self.min_width = int(min_width)  # e.g. the widest CNN filter: shorter batches are padded up to it
        self.buckets = bool(buckets)

    def plan(self, rows: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Training batches (row indices). ``rng=None`` keeps store order: no shuffling, no bucketing."""
        rows = np.asarray(rows)
        if rng is None:
            return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
        rows = rows[rng.permutation(len(rows))]
        if not self.buckets:
            return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
        chunk = batch_size * CHUNK_BATCHES
        batches = []
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def eval_plan(self, rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """Evaluation batches: all rows sorted by length (deterministic, least padding)."""
        rows = np.asarray(rows)
        rows = rows[np.argsort(self.lengths[rows], kind="stable")]
        return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]

    def width(self, rows: np.ndarray) -> int:
        """The padded width T of a batch of these rows."""
        return max(int(self.lengths[rows].max(initial=0)), self.pad_to, self.min_width, 1)

    def make(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids (B, T) int64, lengths (B,) int64, labels (B,) int64) for these rows, padded with PAD_ID."""
        rows = np.asarray(rows)
        lengths = self.lengths[rows]  # (B,)
        width = self.width(rows)
        cols = np.arange(width)[None, :]  # (1, T)
        # Column j of row b holds token src[b, j] of that review; post: src = j, pre: src = j - (T - L).
        src = cols if self.padding == "post" else cols - (width - lengths)[:, None]
        valid = (src >= 0) & (src < lengths[:, None])  # (B, T)
        flat_pos = self.offsets[rows][:, None] + src  # (B, T) positions in the flat token array
        np.clip(flat_pos, 0, max(len(self.tokens) - 1, 0), out=flat_pos)
        ids = np.where(valid, self.tokens[flat_pos] if len(self.tokens) else 0, PAD_ID).astype(np.int64)
        return (torch.from_numpy(ids), torch.from_numpy(lengths.astype(np.int64)),
                torch.from_numpy(self.labels[rows].astype(np.int64)))

    def real_tokens(self, rows: np.ndarray) -> int:
        return int(self.lengths[rows].sum())
