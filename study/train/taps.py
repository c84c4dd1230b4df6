"""The CNN's CPU route: max over time of every filter, from one matrix product per batch, exact gradients.

A width-w filter's output at window s of review b is ``sum_k x[b, s+k] . tap_k``. ``window_max`` projects
each *distinct* word of the batch through every tap of every filter once, ``Y = vectors @ weight``
((U, D) x (D, S), S = sum over widths of w*F), then for each review adds the shifted tap columns of its
words and keeps the max over its valid windows: (B, sum F) pre-activation maxima.

Its backward is written out (``_WindowMax``): only the winning window of each (review, filter) receives a
gradient, so the gradient of ``Y`` is a sparse (U, S) matrix with B*F*w entries per width, and the
weight and word gradients are two sparse-dense products, B*F*sum(w)*D multiply-adds each, instead of
dense ones over all B*T positions (and no (B, F, w, D) intermediate, no B*T-row sparse embedding gradient).

    tops = window_max(vectors, weight, where, lengths, widths=(3, 4, 5), filters=100)   # (B, 300)
    h = tap_conv(vectors, where, conv)   # (B, T-w+1, F): a deeper CNN's first Conv1d layer, all windows

``tap_conv`` is the same idea for the first layer of a multi-layer CNN, whose every window feeds the next
layer: each tap's column block of ``Y`` is gathered per position and added, and the backward adds the
windows' gradients into a dense (U, w*F) gradient of ``Y`` by index.

``vectors`` (U, D) are the distinct words' embeddings, ``where`` (B, T) the index of each position's word
in ``vectors`` (post-padded; PAD's vector must be zero), ``weight`` (D, S) the taps (models.TapConv layout:
column ``col_w + k*F + i`` is tap k of filter i of width w). A review shorter than w keeps window 0.
Ties within a row go to one window (as torch.max picks), where autograd's amax would split the gradient.
"""
from __future__ import annotations

import torch

# Reviews gathered per block: at most this many floats of (rows, T, S). Blocks are kept large: smaller,
# cache-sized blocks measured 3-4x slower on a loaded 2-core machine (more, smaller multi-threaded ops).
CHUNK_FLOATS = 1 << 25


def _tops(y: torch.Tensor, where: torch.Tensor, lengths: torch.Tensor, widths: tuple[int, ...],
          filters: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Max over valid windows (B, len(widths)*F) and each max's window start, per width (B, F)."""
    batch, steps = where.shape
    tops = y.new_empty(batch, len(widths) * filters)
    best = [torch.empty(batch, filters, dtype=torch.long, device=y.device) for _ in widths]
    chunk = max(1, CHUNK_FLOATS // max(1, steps * y.shape[1]))
    positions = torch.arange(steps, device=y.device)
    for start in range(0, batch, chunk):
        rows = slice(start, start + chunk)
        block = y.index_select(0, where[rows].reshape(-1)).view(-1, steps, y.shape[1])  # (c, T, S)
        col = 0
        for j, w in enumerate(widths):
            n = steps - w + 1
            z = block[:, 0:n, col:col + filters].clone()  # (c, n, F) tap 0
            for k in range(1, w):
                z += block[:, k:k + n, col + k * filters:col + (k + 1) * filters]
            last = (lengths[rows] - w).clamp(min=0).unsqueeze(1)  # (c, 1) last valid window start
            z.masked_fill_((positions[:n].unsqueeze(0) > last).unsqueeze(2), float("-inf"))
            values, index = z.max(dim=1)  # (c, F)
            tops[rows, j * filters:(j + 1) * filters] = values
            best[j][rows] = index
            col += w * filters
    return tops, best


class _WindowMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, vectors, weight, where, lengths, widths, filters):
        y = vectors @ weight  # (U, S): every tap of every filter, each distinct word once
        tops, best = _tops(y, where, lengths, widths, filters)
        ctx.save_for_backward(vectors, weight, where, *best)
        ctx.widths, ctx.filters = widths, filters
        return tops

    @staticmethod
    def backward(ctx, grad_tops):
        vectors, weight, where, *best = ctx.saved_tensors
        widths, filters = ctx.widths, ctx.filters
        batch = where.shape[0]
        rows, cols, values = [], [], []
        f_index = torch.arange(filters, device=where.device)
        col = 0
        for j, w in enumerate(widths):
            grad = grad_tops[:, j * filters:(j + 1) * filters]  # (B, F)
            for k in range(w):
                # Tap k of filter i saw the word at the winning window's start + k.
                rows.append(where.gather(1, best[j] + k).reshape(-1))  # (B*F,) word index
                cols.append((col + k * filters + f_index).expand(batch, filters).reshape(-1))
                values.append(grad.reshape(-1))
            col += w * filters
        index = torch.stack([torch.cat(rows), torch.cat(cols)])
        grad_y = torch.sparse_coo_tensor(index, torch.cat(values), (vectors.shape[0], weight.shape[1]),
                                         check_invariants=False).coalesce()
        grad_weight = torch.sparse.mm(grad_y.t(), vectors).t() if ctx.needs_input_grad[1] else None  # (D, S)
        grad_vectors = torch.sparse.mm(grad_y, weight.t()) if ctx.needs_input_grad[0] else None  # (U, D)
        return grad_vectors, grad_weight, None, None, None, None


def window_max(vectors: torch.Tensor, weight: torch.Tensor, where: torch.Tensor, lengths: torch.Tensor, *,
               widths: tuple[int, ...], filters: int) -> torch.Tensor:
    """(B, len(widths)*F) max over each review's valid windows, pre-activation, no bias (module docstring)."""
    return _WindowMax.apply(vectors, weight, where, lengths, tuple(widths), int(filters))


class _TapConv(torch.autograd.Function):
    """Every window of a first conv layer from the distinct words' projections: (B, n, F), n = T - w + 1.
    Each tap is gathered straight from ``y`` and the backward adds into (U, w*F) by index: no (B, T, w*F)
    block and no zero-filled gradient per tap slice (what autograd over slices of a gathered ``y`` costs)."""

    @staticmethod
    def forward(ctx, vectors, taps, where, width):
        filters = taps.shape[1] // width
        y = vectors @ taps  # (U, w*F)
        n = where.shape[1] - width + 1
        out = y[:, 0:filters].index_select(0, where[:, 0:n].reshape(-1))  # (B*n, F) tap 0
        for k in range(1, width):
            out += y[:, k * filters:(k + 1) * filters].index_select(0, where[:, k:k + n].reshape(-1))
        ctx.save_for_backward(vectors, taps, where)
        ctx.width = width
        return out.view(where.shape[0], n, filters)

    @staticmethod
    def backward(ctx, grad_out):
        vectors, taps, where = ctx.saved_tensors
        width, (batch, n, filters) = ctx.width, grad_out.shape
        flat = grad_out.reshape(batch * n, filters)
        grad_y = vectors.new_zeros(vectors.shape[0], width * filters)  # (U, w*F)
        for k in range(width):  # tap k of window s saw the word at position s + k
            grad_y[:, k * filters:(k + 1) * filters].index_add_(0, where[:, k:k + n].reshape(-1), flat)
        grad_vectors = grad_y @ taps.t() if ctx.needs_input_grad[0] else None  # (U, D)
        grad_taps = vectors.t() @ grad_y if ctx.needs_input_grad[1] else None  # (D, w*F)
        return grad_vectors, grad_taps, None, None


def tap_conv(vectors: torch.Tensor, where: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """``conv`` over the embedded batch as (B, T-w+1, F), from one product per distinct word: ``vectors @
    taps`` ((U, D) x (D, w*F)), each tap gathered per position (``where`` (B, T)) and added along time.
    Equal to ``conv(embedding(ids).transpose(1, 2)).transpose(1, 2)``, in values and gradients; the weight
    and word gradients then multiply U rows, not B*T (50 reviews of 330 tokens hold about 3,000 words)."""
    filters, dim, width = conv.weight.shape
    taps = conv.weight.permute(1, 2, 0).reshape(dim, width * filters)  # column k*F + i: tap k of filter i
    return _TapConv.apply(vectors, taps, where, width) + conv.bias
