"""The original study's training loops, rebuilt as the original study wrote them, to measure speed-ups against in the same run.

What is copied from the original study (docs/original-study.md, section 2): the blog's CNN (``Conv2d(1, 10, (w, 500),
padding=(w-1, 0))`` per width 1,2,3,5, tanh, max-pool over all of time, ``Linear(40, 3)``, softmax in the
forward), the LSTM (``nn.LSTM(500, 256, 2)``, output at the last padded step, softmax), fine-tuned dense
embeddings, one ``Adam`` over everything (a dense step over the whole vocabulary every batch),
``CrossEntropyLoss`` on the softmax output, and every review post-padded to the store's longest. Only the
speed is measured here; the trainer's ``faithful`` mode is what reproduces the original study's accuracy.

    from study.bench.original_loops import original_loop
    original_loop("cnn", store, samples=24, batch_size=1)   # {"samples_per_s": ..., "tokens_per_s": ...}
    original_loop("lstm", store, samples=64, batch_size=32, device="cuda")   # the original study ran on a GPU, in fp32
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_prep.store import Store
from study.train.batches import Batcher


class OriginalCNN(nn.Module):
    def __init__(self, vectors: np.ndarray, num_classes: int, widths=(1, 2, 3, 5), filters: int = 10):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(torch.tensor(vectors), freeze=False)
        dim = vectors.shape[1]
        self.convs = nn.ModuleList(nn.Conv2d(1, filters, (w, dim), padding=(w - 1, 0)) for w in widths)
        self.fc = nn.Linear(filters * len(widths), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids).unsqueeze(1)  # (B, 1, T, D)
        maps = [torch.tanh(conv(x)).squeeze(3) for conv in self.convs]  # (B, F, T+w-1) each
        pooled = [F.max_pool1d(m, m.size(2)).squeeze(2) for m in maps]  # (B, F) each
        return F.softmax(self.fc(torch.cat(pooled, 1)), dim=1)


class OriginalLSTM(nn.Module):
    def __init__(self, vectors: np.ndarray, num_classes: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(torch.tensor(vectors), freeze=False)
        self.lstm = nn.LSTM(vectors.shape[1], hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(ids))  # (B, T, H)
        return F.softmax(self.fc(out[:, -1, :]), dim=1)  # the last padded step


def original_loop(arch: str, store: Store, *, samples: int, batch_size: int = 1, warmup: int = 1,
              layers: int = 2, seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """Time ``samples`` training samples (after ``warmup`` steps) of the original study's loop for ``arch``."""
    torch.manual_seed(seed)
    if arch == "cnn":
        model = OriginalCNN(store.embeddings, store.num_classes)
    elif arch == "lstm":
        model = OriginalLSTM(store.embeddings, store.num_classes, layers=layers)
    else:
        raise ValueError(f"the original study had no {arch!r} loop (cnn or lstm)")
    device = torch.device(device)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    batcher = Batcher(store, padding="post", pad_to=int(store.lengths.max()))
    rows = store.indices("train")[np.random.default_rng(seed).permutation(len(store.indices("train")))]
    steps = warmup + -(-samples // batch_size)
    rows = np.resize(rows, steps * batch_size)  # wraps around if the store is small
    done = tokens = 0
    start = None
    for step in range(steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        batch = rows[step * batch_size:(step + 1) * batch_size]
        ids, _, labels = (t.to(device) for t in batcher.make(batch))
        optimizer.zero_grad()
        loss = criterion(model(ids), labels)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            done += len(batch)
            tokens += batcher.real_tokens(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"samples_per_s": done / seconds, "tokens_per_s": tokens / seconds, "samples": done,
            "seconds": seconds, "batch_size": batch_size, "seq_len_mean": tokens / done,
            "padded_len": batcher.width(rows[:1]), "preset": f"original_{arch}{layers if arch == 'lstm' else ''}"
            f"_b{batch_size}", "device": device.type, "threads": torch.get_num_threads()}
