"""Adam for lookup tables with sparse gradients: only the rows a batch touched move ("lazy" Adam).

The arithmetic and the state are those of ``torch.optim.SparseAdam``: one step count per table, the bias
corrections from it, and the moments of rows a batch did not touch left as they were; its state dicts load
here and back. What differs is the route. SparseAdam builds sparse tensors for each moment and adds them
into the dense state (``sparse_mask`` twice, three sparse-into-dense adds, about a dozen passes over the
touched rows); here the touched rows' moments are gathered once, updated in place (``lerp_``, ``addcmul_``)
and written back, and the parameter gets one ``index_add_``. On a fastText step (a few thousand touched
rows of 300 floats) that is the optimizer's whole cost, and most of the step's: see docs/benchmarks.md.
"""
from __future__ import annotations

import math

import torch

__all__ = ["RowAdam"]


class RowAdam(torch.optim.Optimizer):
    """``torch.optim.SparseAdam``'s update (same defaults, same state keys) over the touched rows only."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if lr < 0 or eps < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid RowAdam settings: lr {lr}, betas {betas}, eps {eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "maximize": False})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("RowAdam takes sparse gradients (nn.Embedding(sparse=True)); "
                                       "use Adam for dense ones")
                grad = param.grad.coalesce()  # one row per index, summed
                rows, values = grad.indices()[0], grad.values()
                if group["maximize"]:
                    values = -values
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                if values.numel() == 0:
                    continue
                exp_avg = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
                exp_avg_sq.addcmul_(values, values, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                update = exp_avg.div_(exp_avg_sq.sqrt_().add_(group["eps"]))  # both gathered copies are spent
                param.index_add_(0, rows, update, alpha=-step_size)
        return loss
