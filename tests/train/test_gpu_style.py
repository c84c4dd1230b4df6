"""The CUDA routes of the models (``gpu_style``) compute the same function as the CPU routes.

They run on the CPU here by forcing ``model.gpu_style = True``; on CUDA they are the default.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from study.train.config import TrainConfig
from study.train.models import build_model
from helpers import pad

VECTORS = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
SEQS = [list(np.random.default_rng(i).integers(2, 60, size=n)) for i, n in enumerate([1, 2, 4, 9, 13])]
CONFIGS = {
    "cnn": {"arch": "cnn", "widths": "1,2,3,5", "filters": 4, "activation": "tanh", "dropout": 0.0},
    "cnn_relu": {"arch": "cnn", "widths": "3,4,5", "filters": 3, "activation": "relu", "dropout": 0.0},
    "lstm_last": {"arch": "lstm", "hidden_size": 6, "num_layers": 2, "readout": "last_step"},
    "lstm_final": {"arch": "lstm", "hidden_size": 6, "num_layers": 1, "readout": "final_state"},
    "fasttext": {"arch": "fasttext", "bigram_buckets": 50},
}


def padded(width: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    return pad(SEQS, width, side)


def outputs_and_grads(model, ids, lengths) -> list[torch.Tensor]:
    model.zero_grad()
    out = model(ids, lengths)
    (out * torch.arange(1.0, 4.0)).sum().backward()
    return [out.detach()] + [p.grad.to_dense() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("side", ["post", "pre"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_gpu_route_equals_cpu_route_in_values_and_gradients(name, side):
    torch.manual_seed(0)
    model = build_model(TrainConfig.from_flat({**CONFIGS[name], "padding": side}), VECTORS, 3).train()
    ids, lengths = padded(15, side)
    model.gpu_style = False
    cpu = outputs_and_grads(model, ids, lengths)
    model.gpu_style = True
    gpu = outputs_and_grads(model, ids, lengths)
    assert len(cpu) == len(gpu) > 2
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn", "cnn_relu", "fasttext"])
def test_gpu_route_ignores_extra_padding(name):
    torch.manual_seed(0)
    model = build_model(TrainConfig.from_flat(CONFIGS[name]), VECTORS, 3).eval()
    model.gpu_style = True
    with torch.inference_mode():
        torch.testing.assert_close(model(*padded(13, "post")), model(*padded(40, "post")), rtol=1e-5, atol=1e-6)


def test_gpu_route_does_not_train_the_pad_row():
    torch.manual_seed(0)
    model = build_model(TrainConfig.from_flat(CONFIGS["cnn"]), VECTORS, 3).train()
    model.gpu_style = True
    model(*padded(20, "post")).sum().backward()
    grad = model.embedding.weight.grad.to_dense()
    assert float(grad[0].abs().sum()) == 0.0 and float(grad[1:].abs().sum()) > 0.0
