"""The study's text classifiers: CNN, LSTM and fastText over the store's word2vec embeddings.

Every model has one call, ``model(ids, lengths) -> logits``: ids (B, T) int64 padded with PAD_ID=0 on the
side given by ``cfg.padding``, lengths (B,) the true lengths, logits (B, C). Build one from a config:

    model = build_model(TrainConfig.from_flat(preset("cnn_original")), store.embeddings, store.num_classes)

The word embedding is always ``model.embedding`` (the trainer excludes it from ``params_no_embedding`` and
gives its sparse gradients to SparseAdam). Outside faithful mode its PAD row is zero and never trained,
and every readout except the LSTM's ``last_step`` ignores pads exactly: adding pads does not change the
logits, on either side. ``last_step`` reads the output at the last *padded* position, as the original study did.

Per device: on the CPU the models save arithmetic (each distinct word projected once, the CNN's max found
without autograd); on CUDA, where a step is bound by kernel launches and host syncs rather than FLOPs,
they take the plain route (no ``torch.unique``, one cuDNN convolution for all CNN widths). Both give the
same function; ``model.gpu_style = True/False`` forces one route (tests, benchmarks), ``None`` = by device.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_prep.store import PAD_ID
from study.train.config import TrainConfig
from study.train.taps import tap_conv, window_max

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


def make_embedding(vectors: np.ndarray, *, freeze: bool, faithful: bool) -> nn.Embedding:
    """Embedding initialised from the store; sparse gradients when fine-tuned (not in faithful mode)."""
    weight = torch.tensor(vectors, dtype=torch.float32)
    if not faithful:
        weight[PAD_ID] = 0.0  # pads must contribute nothing (CNN windows, fastText sums)
    return nn.Embedding.from_pretrained(weight, freeze=freeze, sparse=not (freeze or faithful),
                                        padding_idx=None if faithful else PAD_ID)


def gpu_style(model: nn.Module, ids: torch.Tensor) -> bool:
    """The plain route on CUDA (or where forced with ``model.gpu_style``), the arithmetic-saving one else."""
    forced = getattr(model, "gpu_style", None)
    return ids.is_cuda if forced is None else bool(forced)


def embed_unique(embedding: nn.Embedding, ids: torch.Tensor, plain: bool = False) -> torch.Tensor:
    """``embedding(ids)`` (B, T, D), looking up each distinct id once: the sparse gradient then has one row
    per distinct word (U) instead of B*T rows, so SparseAdam coalesces and updates far less. ``plain``
    skips that (torch.unique makes the GPU wait for the host every step)."""
    if plain:
        return embedding(ids)
    words, where = torch.unique(ids, return_inverse=True)  # (U,), (B, T)
    return embedding(words)[where]


def bag_sum(table: nn.Module, ids: torch.Tensor, mask: torch.Tensor, plain: bool = False) -> torch.Tensor:
    """Sum of ``table`` rows over the masked ids of each row: (B, T) -> (B, D), one lookup per distinct id
    (``plain``: a (B, T, D) lookup and a masked sum, no torch.unique)."""
    if plain:
        return (table(ids) * mask.unsqueeze(2).to(table.weight.dtype)).sum(dim=1)
    words, where = torch.unique(ids, return_inverse=True)  # (U,), (B, T)
    counts = torch.zeros(ids.shape[0], len(words), device=ids.device)  # (B, U) bag-of-words counts
    counts.scatter_add_(1, where, mask.to(counts.dtype))
    vectors = table(words)  # (U, D)
    return counts.to(vectors.dtype) @ vectors


def left_align(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Turn pre-padded ids (B, T) into post-padded ones: row b is rotated left by T - L_b."""
    width = ids.shape[1]
    shift = (width - lengths).unsqueeze(1)  # (B, 1)
    index = (torch.arange(width, device=ids.device).unsqueeze(0) + shift) % width  # (B, T)
    return ids.gather(1, index)


def valid_steps(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, T) bool: True at the real (post-padded) positions."""
    return torch.arange(width, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class TapConv(nn.Module):
    """The filters of one width, stored as taps: ``weight[:, k*F + i]`` is tap k of filter i, (D, w*F).

    Storing a (D, w*F) matrix lets the CNN multiply the embeddings with all taps of all widths at once.
    Same parameter count and init as ``Conv1d(D, F, w)``; one module per width keeps
    ``max_params_per_layer`` comparable with the original study's per-width Conv2d layers.
    """

    def __init__(self, dim: int, width: int, filters: int):
        super().__init__()
        self.width, self.filters = width, filters
        bound = 1.0 / math.sqrt(dim * width)  # Conv1d's default init
        self.weight = nn.Parameter(torch.empty(dim, width * filters).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(filters).uniform_(-bound, bound))


class CNN(nn.Module):
    """Kim-style text CNN: conv over time per width, max over the valid windows, linear.

    conv_layers=1 runs one (B*T, D) x (D, sum(w*F)) matrix product, then adds the shifted tap outputs per
    width (twice as fast on this CPU as separate Conv1d); on CUDA it runs one Conv1d of all widths instead
    (``_conv``). Deeper stacks use Conv1d per width after the first layer; on the CPU that first layer, the
    costly one (D input channels), runs from the distinct words (``tap_conv``).
    """
    gpu_style: bool | None = None  # None: by device, see the module docstring

    def __init__(self, cfg: TrainConfig, embedding: nn.Embedding, num_classes: int):
        super().__init__()
        m = cfg.model
        self.embedding, self.padding, self.faithful = embedding, cfg.padding, cfg.faithful
        self.widths, self.act = m.widths, ACTIVATIONS[m.activation]
        dim = embedding.embedding_dim
        if m.conv_layers == 1:
            self.convs = nn.ModuleList(TapConv(dim, w, m.filters) for w in m.widths)
            self.stacks = None
        else:
            self.convs = None
            self.stacks = nn.ModuleList(
                nn.ModuleList(nn.Conv1d(dim if i == 0 else m.filters, m.filters, w) for i in range(m.conv_layers))
                for w in m.widths)
        # Receptive field of a branch; a batch must be at least this wide.
        self.reach = [m.conv_layers * (w - 1) + 1 for w in m.widths]
        self.min_width = max(self.reach)
        # The filter width of each output channel of ``_conv`` (sum(F),), moved with the model.
        self.register_buffer("channel_width", torch.tensor([w for w in m.widths for _ in range(m.filters)]),
                             persistent=False)
        self.dropout = nn.Dropout(m.dropout)
        self.fc = nn.Linear(m.filters * len(m.widths), num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(min=1)
        if self.padding == "pre":
            ids = left_align(ids, lengths)  # windows are then the same for both sides
        if self.convs is None:
            pooled = self._stacks(ids, lengths)
        elif self.faithful:
            pooled = self._taps(ids, lengths)
        elif gpu_style(self, ids):
            pooled = self._conv(ids, lengths)
        else:
            pooled = self._window_max(ids, lengths)
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))  # (B, C)

    def _window_mask(self, lengths: torch.Tensor, windows: int, reach: int) -> torch.Tensor:
        # Window s is valid if it lies inside the review; a review shorter than the filter keeps window 0
        # (which then covers zero pad vectors), so every row has at least one. (B, n, 1)
        last = (lengths - reach).clamp(min=0).unsqueeze(1)  # (B, 1)
        return (torch.arange(windows, device=lengths.device).unsqueeze(0) <= last).unsqueeze(2)

    def _window_max(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        # CPU route (taps.py): one (U, D) x (D, S) product for the distinct words, max over valid windows,
        # a backward that touches only the winning windows. tanh and relu are monotone, so
        # act(max(z)) == max(act(z)): the activation runs over (B, F), not (B, n, F).
        weight = torch.cat([conv.weight for conv in self.convs], dim=1)  # (D, S), S = sum(w*F)
        bias = torch.cat([conv.bias for conv in self.convs])  # (sum F,)
        words, where = torch.unique(ids, return_inverse=True)  # (U,), (B, T)
        tops = window_max(self.embedding(words), weight, where, lengths, widths=self.widths,
                          filters=self.convs[0].filters)
        return [self.act(tops + bias)]

    def _taps(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        # Faithful mode: the original study's Conv2d with padding w-1 on both ends of time, max over every
        # output, plain autograd. Every tap of every filter at every position, time last: (S, B, T).
        weight = torch.cat([conv.weight for conv in self.convs], dim=1)  # (D, S), S = sum(w*F)
        words, where = torch.unique(ids, return_inverse=True)  # (U,), (B, T)
        edge = max(self.widths) - 1
        y = F.pad((weight.t() @ self.embedding(words).t())[:, where], (edge, edge))  # (S, B, T + 2 edge)
        steps, pooled, col = ids.shape[1], [], 0
        for conv in self.convs:
            w, f = conv.width, conv.filters
            start, n = edge - (w - 1), steps + w - 1  # outputs s = -(w-1) .. T-1
            z = y[col:col + f, :, start:start + n]  # (F, B, n) tap 0
            for k in range(1, w):
                z = z + y[col + k * f:col + (k + 1) * f, :, start + k:start + k + n]
            col += w * f
            pooled.append(self.act(z.amax(dim=2).t() + conv.bias))  # (B, F)
        return pooled

    def _conv(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        # GPU route: every width's taps zero-padded to the widest, one Conv1d, one masked max, plain autograd.
        # Fewer, larger kernels than _taps; the extra FLOPs cost nothing on a GPU at these sizes.
        wide = max(self.widths)
        weight = torch.cat([F.pad(c.weight.view(-1, c.width, c.filters).permute(2, 0, 1), (0, wide - c.width))
                            for c in self.convs])  # (C, D, wide), C = sum(F); taps k >= w are zero
        bias = torch.cat([c.bias for c in self.convs])  # (C,)
        # PAD columns on the right give every window start s < T its full reach; the PAD row is zero.
        x = self.embedding(F.pad(ids, (0, wide - 1), value=PAD_ID)).transpose(1, 2)  # (B, D, T + wide - 1)
        z = F.conv1d(x, weight)  # (B, C, T): window s of every filter
        last = (lengths.unsqueeze(1) - self.channel_width).clamp(min=0)  # (B, C) last valid window start
        valid = torch.arange(z.shape[2], device=ids.device) <= last.unsqueeze(2)  # (B, C, T)
        top = z.masked_fill(~valid, float("-inf")).amax(dim=2)  # (B, C)
        return [self.act(top + bias)]

    def _stacks(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        plain = gpu_style(self, ids)
        if plain:
            h0 = self.embedding(ids).transpose(1, 2).contiguous()  # (B, D, T): Conv1d runs ~2x faster on a copy
        else:
            words, where = torch.unique(ids, return_inverse=True)  # (U,), (B, T)
            vectors = self.embedding(words)  # (U, D)
        pooled = []
        for stack, reach in zip(self.stacks, self.reach):
            if plain:
                h = self.act(stack[0](h0))
            else:  # the first layer from the distinct words (tap_conv); (B, n, F) -> (B, F, n) for Conv1d
                h = self.act(tap_conv(vectors, where, stack[0])).transpose(1, 2).contiguous()
            for conv in stack[1:]:
                h = self.act(conv(h))  # (B, F, T')
            mask = self._window_mask(lengths, h.shape[2], reach).transpose(1, 2)  # (B, 1, n)
            pooled.append(h.masked_fill(~mask, float("-inf")).amax(dim=2))
        return pooled


class LSTMClassifier(nn.Module):
    """LSTM over the embeddings, then a readout over time, then linear."""

    gpu_style: bool | None = None  # None: by device, see the module docstring

    def __init__(self, cfg: TrainConfig, embedding: nn.Embedding, num_classes: int):
        super().__init__()
        m = cfg.model
        self.embedding, self.padding, self.readout = embedding, cfg.padding, m.readout
        self.bidirectional = m.bidirectional
        between = m.dropout if m.num_layers > 1 else 0.0
        self.lstm = (DenseBiLSTM(embedding.embedding_dim, m.hidden_size, m.num_layers, between)
                     if m.bidirectional else
                     nn.LSTM(embedding.embedding_dim, m.hidden_size, m.num_layers, batch_first=True, dropout=between))
        self.min_width = 1
        self.dropout = nn.Dropout(m.dropout)
        self.fc = nn.Linear(m.hidden_size * (2 if m.bidirectional else 1), num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(min=1)
        if self.readout == "last_step":
            out = self.lstm(embed_unique(self.embedding, ids, gpu_style(self, ids)))  # (B, T, H*dirs)
            out = out[0] if isinstance(out, tuple) else out  # nn.LSTM returns (out, state)
            return self.fc(self.dropout(out[:, -1]))  # the original study's read: after T - L pad steps when post-padded
        if self.padding == "pre":
            ids = left_align(ids, lengths)  # exact readouts start the LSTM at the first real token
        x = embed_unique(self.embedding, ids, gpu_style(self, ids))  # (B, T, D), post-padded
        width = x.shape[1]
        if self.bidirectional:
            out = self.lstm(x, lengths)  # (B, T, 2H): both directions start at the text's own ends
            if self.readout == "final_state":
                hidden = out.shape[2] // 2
                ends = out[torch.arange(out.shape[0], device=out.device), lengths - 1, :hidden]
                return self.fc(self.dropout(torch.cat([ends, out[:, 0, hidden:]], dim=1)))  # (B, 2H)
        else:
            # Unidirectional over post-padded input: a dense LSTM is 4-8x faster than packing on the CPU,
            # needs no lengths.cpu() sync on CUDA, and pads after the true end cannot affect earlier outputs.
            out, _ = self.lstm(x)  # (B, T, H)
            if self.readout == "final_state":
                last = out[torch.arange(out.shape[0], device=out.device), lengths - 1]  # (B, H)
                return self.fc(self.dropout(last))
        valid = valid_steps(lengths, width).unsqueeze(2)  # (B, T, 1)
        if self.readout == "max":
            feature = out.masked_fill(~valid, float("-inf")).amax(dim=1)
        else:  # mean
            feature = (out * valid).sum(dim=1) / lengths.unsqueeze(1).to(out.dtype)
        return self.fc(self.dropout(feature))


class DenseBiLSTM(nn.Module):
    """A bidirectional LSTM over post-padded input, without packing: ``forward(x, lengths) -> (B, T, 2H)``.

    Each layer is two dense unidirectional ``nn.LSTM``s; the backward one reads every row's real tokens in
    reverse (its pads stay after them), and its outputs are put back in text order. Pads after a row's end
    never reach a real position's output in either direction, as with packing, but each direction is one
    dense kernel call: on the CPU packing made a 2 x 128 bidirectional LSTM several times slower than the
    two dense passes. ``lengths=None`` reverses the full padded width: ``nn.LSTM(bidirectional=True)``
    over the padded batch, which the original study's ``last_step`` readout reads.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.between = nn.Dropout(dropout)  # between layers, as nn.LSTM's ``dropout``

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
        if lengths is None:
            order = (x.shape[1] - 1 - steps).expand(x.shape[0], -1)
        else:
            ends = lengths.unsqueeze(1) - 1  # (B, 1)
            order = torch.where(steps <= ends, ends - steps, steps)  # (B, T): reverse the text, keep the pads
        def reverse(y):  # its own inverse
            return y.gather(1, order.unsqueeze(2).expand(-1, -1, y.shape[2]))
        for i, (ahead, back) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.between(x)
            x = torch.cat([ahead(x)[0], reverse(back(reverse(x))[0])], dim=2)
        return x


class FastText(nn.Module):
    """Mean of the word (and optional hashed bigram) embeddings, then linear (Joulin et al. 2016)."""

    HASH = 1_000_003  # multiplier for hashing a (first, second) token pair into a bucket
    gpu_style: bool | None = None  # None: by device, see the module docstring

    def __init__(self, cfg: TrainConfig, embedding: nn.Embedding, num_classes: int):
        super().__init__()
        m = cfg.model
        self.embedding, self.buckets = embedding, m.bigram_buckets
        dim = embedding.embedding_dim
        if self.buckets:
            # Row 0 is the pad bucket. Sparse gradients: only the buckets seen in a batch are updated.
            self.bigrams = nn.Embedding(self.buckets + 1, dim, sparse=True, padding_idx=0)
            nn.init.uniform_(self.bigrams.weight, -1.0 / dim, 1.0 / dim)
            with torch.no_grad():
                self.bigrams.weight[0] = 0.0
        self.min_width = 1
        self.dropout = nn.Dropout(m.dropout)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(min=1)
        mask = ids != PAD_ID  # (B, T); works for either padding side
        plain = gpu_style(self, ids)
        total = bag_sum(self.embedding, ids, mask, plain)  # (B, D)
        count = lengths.to(total.dtype)
        if self.buckets:
            first, second = ids[:, :-1], ids[:, 1:]
            pair = mask[:, :-1] & mask[:, 1:]  # (B, T-1) both tokens real
            bucket = torch.where(pair, (first * self.HASH + second) % self.buckets + 1, 0)
            total = total + bag_sum(self.bigrams, bucket, pair, plain)  # (B, D)
            count = count + pair.sum(dim=1).to(total.dtype)
        return self.fc(self.dropout(total / count.unsqueeze(1)))


BUILDERS = {"cnn": CNN, "lstm": LSTMClassifier, "fasttext": FastText}


def build_model(cfg: TrainConfig, embeddings: np.ndarray, num_classes: int) -> nn.Module:
    """The model for ``cfg.arch`` with its embedding initialised from ``embeddings`` (V, D)."""
    embedding = make_embedding(embeddings, freeze=cfg.freeze_embeddings, faithful=cfg.dense_embedding_updates)
    return BUILDERS[cfg.arch](cfg, embedding, num_classes)


def count_params(model: nn.Module) -> dict:
    """Parameter counts under the metric names. Every lookup table (the word embedding, fastText's hashed
    bigram buckets) counts as embedding: "without embeddings" is the compute that runs per token."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    embedding = sum(m.weight.numel() for m in tables)
    layers = []
    inside_bi = set()
    for module in model.modules():
        if isinstance(module, DenseBiLSTM):  # one layer = its two directions, as nn.LSTM counts them
            layers.extend(sum(p.numel() for p in f.parameters()) + sum(p.numel() for p in b.parameters())
                          for f, b in zip(module.forward_layers, module.backward_layers))
            inside_bi.update(id(m) for m in module.modules())
        if id(module) in inside_bi or any(module is t for t in tables) or next(module.children(), None) is not None:
            continue
        if isinstance(module, nn.RNNBase):
            # One nn.LSTM holds all layers; count each layer (both directions) as the original study's table did.
            per_layer: dict[str, int] = {}
            for name, p in module.named_parameters():
                layer = name.split("_l")[-1].split("_")[0]
                per_layer[layer] = per_layer.get(layer, 0) + p.numel()
            layers.extend(per_layer.values())
        else:
            layers.append(sum(p.numel() for p in module.parameters(recurse=False)))
    return {"params_total": total, "params_trainable": trainable, "params_no_embedding": total - embedding,
            "max_params_per_layer": max(layers, default=0)}
