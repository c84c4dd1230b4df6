"""FLOPs of a training step from the config, and this machine's matrix-product rate measured now.

    from study.bench.flops import matmul_rate, train_flops
    flops = train_flops(cfg, dim=300, num_classes=2)    # TrainFlops(per_token=..., per_sample=...)
    flops.total(tokens=..., samples=...)                 # FLOPs of that many real tokens and samples
    matmul_rate()                                        # {"gflops": ..., "gflop_per_cpu_s": ..., ...} fp32, now

The count is the conventional dense one (a multiply-add is 2 FLOPs; backward = the weight gradients plus
the input gradients that training needs), per real token (pads not counted): the work the architecture
asks for, not the work an implementation happens to do. A model that skips work (the CNN finds its max
first and back-propagates only the winning windows) can therefore show more than 100% of the matmul rate.

- CNN, per token and width w: layer 1 costs 2*D*w*F forward, a deeper layer 2*F*w*F; backward costs one
  forward for the weights plus one for the inputs, except layer 1's inputs when the embedding is frozen.
- LSTM, per token, layer and direction: 2*4H*(I + H) forward (I = D for layer 1, H*dirs above); backward
  2x, except layer 1's input gradient (2*4H*D) when the embedding is frozen. 2x256 over 500-d: 7.8 M.
- fastText: a sum of D-vectors per token and bigram (forward and backward).
- The output layer: 3 x 2*features*C per sample.

The rate is measured in the process that benchmarks, with its thread count, right before (or between)
the figures it is compared with: on a shared machine it moves with the load like everything else.
``gflop_per_cpu_s`` divides by the process's CPU time instead of wall time: on a machine with more
runnable threads than cores it still says what the code does per core-second it actually got (with
one thread; with more, threads that spin while waiting count too).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from study.train.config import TrainConfig


@dataclass(frozen=True)
class TrainFlops:
    per_token: float   # forward + backward FLOPs per real token
    per_sample: float  # forward + backward FLOPs per sample (the output layer)

    def total(self, *, tokens: float, samples: float) -> float:
        return self.per_token * tokens + self.per_sample * samples


def _cnn(cfg: TrainConfig, dim: int) -> tuple[float, int]:
    m = cfg.model
    per_token = 0.0
    for w in m.widths:
        for layer in range(m.conv_layers):
            forward = 2.0 * (dim if layer == 0 else m.filters) * w * m.filters
            input_grad = 0.0 if (layer == 0 and cfg.freeze_embeddings) else forward
            per_token += forward + forward + input_grad
    return per_token, m.filters * len(m.widths)


def _lstm(cfg: TrainConfig, dim: int) -> tuple[float, int]:
    m = cfg.model
    dirs = 2 if m.bidirectional else 1
    per_token = 0.0
    for layer in range(m.num_layers):
        inputs = dim if layer == 0 else m.hidden_size * dirs
        forward = 2.0 * 4 * m.hidden_size * (inputs + m.hidden_size)
        frozen_input = 2.0 * 4 * m.hidden_size * dim if (layer == 0 and cfg.freeze_embeddings) else 0.0
        per_token += dirs * (3 * forward - frozen_input)
    return per_token, m.hidden_size * dirs


def _fasttext(cfg: TrainConfig, dim: int) -> tuple[float, int]:
    lookups = 2 if cfg.model.bigram_buckets else 1  # a word and (almost always) a bigram per token
    return 2.0 * dim * lookups, dim


def train_flops(cfg: TrainConfig, *, dim: int, num_classes: int) -> TrainFlops:
    """Forward + backward FLOPs of ``cfg`` over ``dim``-d embeddings (see the module docstring)."""
    per_token, features = {"cnn": _cnn, "lstm": _lstm, "fasttext": _fasttext}[cfg.arch](cfg, dim)
    return TrainFlops(per_token=per_token, per_sample=3 * 2.0 * features * num_classes)


def matmul_rate(n: int = 1024, seconds: float = 0.3, repeats: int = 3) -> dict:
    """fp32 GFLOP/s of (n x n) @ (n x n) on the CPU at the current thread count: the best of ``repeats``
    timings of about ``seconds`` each (best-of, like every figure on a shared machine)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up: thread pool, caches
    flop = 2.0 * n ** 3
    best = best_cpu = 0.0
    for _ in range(repeats):
        count, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while True:
            torch.mm(a, b, out=out)
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / repeats:
                break
        best = max(best, flop * count / elapsed / 1e9)
        best_cpu = max(best_cpu, flop * count / max(time.process_time() - cpu_start, 1e-9) / 1e9)
    return {"gflops": best, "gflop_per_cpu_s": best_cpu, "n": n, "threads": torch.get_num_threads()}
