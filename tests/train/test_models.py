"""Models: shapes, the original study's parameter counts, exact padding invariance, the fast CNN against references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import pad
from study.train.config import TrainConfig
from study.train.models import build_model, count_params
from study.train.presets import preset
from study.bench.original_loops import OriginalCNN

VOCAB, DIM = 60, 8
VECTORS = np.random.default_rng(0).normal(size=(VOCAB, DIM)).astype(np.float32)

TINY = {
    "cnn": {"arch": "cnn", "widths": "1,2,3,5", "filters": 4, "activation": "tanh", "dropout": 0.3},
    "cnn_deep": {"arch": "cnn", "widths": "2,3", "filters": 4, "conv_layers": 2, "dropout": 0.3},
    "lstm": {"arch": "lstm", "hidden_size": 6, "num_layers": 2, "dropout": 0.3},
    "lstm_bi": {"arch": "lstm", "hidden_size": 6, "num_layers": 2, "bidirectional": True, "dropout": 0.3},
    "fasttext": {"arch": "fasttext", "bigram_buckets": 50},
}


def model_for(name: str, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(TrainConfig.from_flat({**TINY[name], **changes}), VECTORS, 3)
    return model.eval()




SEQS = [list(np.random.default_rng(i).integers(2, VOCAB, size=n)) for i, n in enumerate([1, 2, 4, 9, 13])]


@pytest.mark.parametrize("name,readout", [("cnn", None), ("cnn_deep", None), ("fasttext", None),
                                          ("lstm", "last_step"), ("lstm", "final_state"), ("lstm", "max"),
                                          ("lstm", "mean"), ("lstm_bi", "final_state"), ("lstm_bi", "mean")])
def test_output_shape(name, readout):
    model = model_for(name, **({"readout": readout} if readout else {}))
    ids, lengths = pad(SEQS, 16, "post")
    assert model(ids, lengths).shape == (len(SEQS), 3)


def test_cnn_original_has_the_seeds_55163_parameters_without_embeddings():
    vectors = np.zeros((30, 500), np.float32)
    counts = count_params(build_model(TrainConfig.from_flat(preset("cnn_original")), vectors, 3))
    assert counts["params_no_embedding"] == 55_163  # 10 x 500 x (1+2+3+5) + 40 biases + Linear(40, 3)
    assert counts["params_total"] == 55_163 + 30 * 500
    assert counts["max_params_per_layer"] == 10 * 500 * 5 + 10  # the width-5 filters, as in the original study's table


def test_lstm_original_parameters():
    vectors = np.zeros((30, 500), np.float32)
    counts = count_params(build_model(TrainConfig.from_flat(preset("lstm_original")), vectors, 3))
    layer1 = 4 * 256 * (500 + 256) + 2 * 4 * 256  # 776,192
    layer2 = 4 * 256 * (256 + 256) + 2 * 4 * 256  # 526,336
    assert counts["params_no_embedding"] == layer1 + layer2 + 256 * 3 + 3 == 1_303_299
    assert counts["max_params_per_layer"] == layer1
    frozen = build_model(TrainConfig.from_flat({**preset("lstm_original"), "freeze_embeddings": True}), vectors, 3)
    assert count_params(frozen)["params_trainable"] == 1_303_299


@pytest.mark.parametrize("side", ["post", "pre"])
@pytest.mark.parametrize("name,readout", [("cnn", None), ("cnn_deep", None), ("fasttext", None),
                                          ("lstm", "final_state"), ("lstm", "max"), ("lstm", "mean"),
                                          ("lstm_bi", "final_state"), ("lstm_bi", "max")])
def test_extra_padding_does_not_change_logits(name, readout, side):
    model = model_for(name, padding=side, **({"readout": readout} if readout else {}))
    with torch.inference_mode():
        narrow = model(*pad(SEQS, 13, side))
        wide = model(*pad(SEQS, 40, side))
    torch.testing.assert_close(narrow, wide, rtol=1e-5, atol=1e-6)
    if not name.startswith("cnn"):
        return  # dropout inside an LSTM draws a (B, T, H) mask, so train-mode outputs depend on T
    # Training mode takes another code path in the CNN (argmax, then recompute): same logits.
    model.train()
    torch.manual_seed(1)
    train_narrow = model(*pad(SEQS, 13, side))
    torch.manual_seed(1)
    train_wide = model(*pad(SEQS, 40, side))
    torch.testing.assert_close(train_narrow, train_wide, rtol=1e-5, atol=1e-6)


def test_pre_and_post_padding_agree_for_exact_readouts():
    post = model_for("lstm", readout="mean", padding="post")
    pre = model_for("lstm", readout="mean", padding="pre")
    with torch.inference_mode():
        torch.testing.assert_close(post(*pad(SEQS, 20, "post")), pre(*pad(SEQS, 20, "pre")))


def test_last_step_changes_with_extra_padding():
    """The original study's bug: reading the last padded step makes the logits depend on the batch width."""
    model = model_for("lstm", readout="last_step", padding="post")
    with torch.inference_mode():
        narrow = model(*pad(SEQS, 13, "post"))
        wide = model(*pad(SEQS, 40, "post"))
    assert (narrow - wide).abs().max() > 1e-4


@pytest.mark.parametrize("side,frozen", [("post", False), ("pre", False), ("post", True)])
def test_fast_cnn_matches_conv1d_in_values_and_gradients(side, frozen):
    """The CPU route (taps.window_max, hand-written backward) against Conv1d and autograd, short reviews too."""
    model = model_for("cnn", dropout=0.0, padding=side, freeze_embeddings=frozen).train()
    ids, lengths = pad(SEQS, 15, side)
    post_ids, _ = pad(SEQS, 15, "post")

    def reference():
        x = model.embedding(post_ids).transpose(1, 2)  # (B, D, T)
        pooled = []
        for conv in model.convs:
            w, f = conv.width, conv.filters
            z = F.conv1d(x, conv.weight.view(-1, w, f).permute(2, 0, 1), conv.bias)  # (B, F, n)
            valid = torch.arange(z.shape[2]) <= (lengths - w).clamp(min=0)[:, None]  # (B, n)
            pooled.append(torch.tanh(z.masked_fill(~valid[:, None], float("-inf")).amax(2)))
        return model.fc(torch.cat(pooled, 1))

    grads = []
    for forward in (lambda: model(ids, lengths), reference):
        model.zero_grad()
        out = forward()
        (out * torch.arange(1.0, 4.0)).sum().backward()
        grads.append([p.grad.to_dense() for p in model.parameters() if p.requires_grad])
        grads[-1].insert(0, out.detach())
    assert len(grads[0]) == (11 if frozen else 12)  # logits, embedding unless frozen, 4 x 2 conv, 2 fc
    for fast, ref in zip(*grads):
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("side,frozen", [("post", False), ("pre", False), ("post", True)])
def test_deep_cnn_first_layer_from_distinct_words_matches_conv1d(side, frozen):
    """Two conv layers: the CPU route (tap_conv for the first layer) against Conv1d on the embedded batch
    (the CUDA route, forced here), in values and in every gradient, short reviews and padding included."""
    model = model_for("cnn_deep", dropout=0.0, padding=side, freeze_embeddings=frozen, widths="2,3,5").train()
    ids, lengths = pad(SEQS, 15, side)
    results = []
    for route in (False, True):
        model.gpu_style = route
        model.zero_grad()
        out = model(ids, lengths)
        (out * torch.arange(1.0, 4.0)).sum().backward()
        results.append([out.detach()] + [p.grad.to_dense() for p in model.parameters() if p.requires_grad])
    assert len(results[0]) == (15 if frozen else 16)  # logits, embedding unless frozen, 3 x 2 x 2 conv, 2 fc
    for taps, conv in zip(*results):
        torch.testing.assert_close(taps, conv, rtol=1e-4, atol=1e-5)


def test_fast_cnn_backward_matches_autograd_at_search_space_sizes():
    """Many filters and windows (ties are then unlikely but row sums are long): gradients still agree."""
    from study.train.taps import window_max
    torch.manual_seed(0)
    words, dim, widths, filters = 40, 12, (3, 4, 5), 64
    vectors = torch.randn(words, dim, requires_grad=True)
    weight = torch.randn(dim, sum(widths) * filters, requires_grad=True)
    where = torch.randint(1, words, (6, 30))
    lengths = torch.tensor([30, 25, 9, 3, 1, 30])
    where[torch.arange(30) >= lengths[:, None]] = 0
    with torch.no_grad():
        vectors[0] = 0.0  # the pad word

    def reference():
        y = (vectors @ weight)[where]  # (B, T, S)
        tops, col = [], 0
        for w in widths:
            n = 30 - w + 1
            z = sum(y[:, k:k + n, col + k * filters:col + (k + 1) * filters] for k in range(w))
            valid = torch.arange(n) <= (lengths - w).clamp(min=0)[:, None]
            tops.append(z.masked_fill(~valid[:, :, None], float("-inf")).amax(1))
            col += w * filters
        return torch.cat(tops, 1)

    results = []
    for forward in (lambda: window_max(vectors, weight, where, lengths, widths=widths, filters=filters), reference):
        vectors.grad = weight.grad = None
        out = forward()
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        results.append((out.detach(), vectors.grad.clone(), weight.grad.clone()))
    for fast, ref in zip(*results):
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)


def test_faithful_cnn_is_the_seeds_conv2d_model():
    vectors = VECTORS
    torch.manual_seed(0)
    original = OriginalCNN(vectors, 3, widths=(1, 2, 3, 5), filters=4)
    cfg = TrainConfig.from_flat({**TINY["cnn"], "dropout": 0.0, "faithful": True})
    ours = build_model(cfg, vectors, 3).eval()
    with torch.no_grad():
        for tap, conv in zip(ours.convs, original.convs):
            w, f = tap.width, tap.filters  # Conv2d weight (F, 1, w, D) -> taps (D, w*F)
            tap.weight.copy_(conv.weight[:, 0].permute(2, 1, 0).reshape(DIM, w * f))
            tap.bias.copy_(conv.bias)
        ours.fc.load_state_dict(original.fc.state_dict())
    ids, lengths = pad(SEQS, 20, "post")
    with torch.inference_mode():
        torch.testing.assert_close(torch.softmax(ours(ids, lengths), 1), original(ids), rtol=1e-5, atol=1e-6)


def test_embedding_pad_row_is_zero_and_sparse_when_fine_tuned():
    model = model_for("cnn")
    assert model.embedding.sparse and model.embedding.weight.requires_grad
    assert float(model.embedding.weight.detach()[0].abs().sum()) == 0.0
    faithful = model_for("cnn", faithful=True)
    assert not faithful.embedding.sparse  # the original study's dense update
    frozen = model_for("lstm", freeze_embeddings=True)
    assert not frozen.embedding.weight.requires_grad


def test_dense_bidirectional_lstm_is_the_packed_one():
    """Same weights: the dense two-pass LSTM gives nn.LSTM's packed outputs at every real step, and over the
    full padded width when no lengths are given (the original study's read)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from torch import nn

    from study.train.models import DenseBiLSTM

    torch.manual_seed(0)
    dense, ref = DenseBiLSTM(5, 4, 2, 0.0), nn.LSTM(5, 4, 2, batch_first=True, bidirectional=True)
    for layer in range(2):
        for direction, suffix in ((dense.forward_layers, ""), (dense.backward_layers, "_reverse")):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(direction[layer], f"{kind}_l0").data.copy_(getattr(ref, f"{kind}_l{layer}{suffix}"))
    x, lengths = torch.randn(3, 7, 5), torch.tensor([7, 4, 1])
    packed, _ = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=7)
    got = dense(x, lengths)
    real = (torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
    torch.testing.assert_close(got * real, expected * real)
    torch.testing.assert_close(dense(x), ref(x)[0])
