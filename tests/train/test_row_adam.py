"""RowAdam makes SparseAdam's update (and takes its state) by a cheaper route."""
from __future__ import annotations

import pytest
import torch

from study.train.row_adam import RowAdam


def _grads(rows: int, dim: int, steps: int) -> list[torch.Tensor]:
    """Sparse gradients as nn.Embedding(sparse=True) makes them: repeated indices, uncoalesced, some rows
    never touched, one step touching nothing."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for step in range(steps):
        count = 0 if step == 2 else 12
        index = torch.randint(0, rows - 3, (count,), generator=gen)  # the last 3 rows are never touched
        out.append(torch.sparse_coo_tensor(index.unsqueeze(0), torch.randn(count, dim, generator=gen), (rows, dim),
                                           check_invariants=True))
    return out


def test_row_adam_equals_sparse_adam_and_takes_its_state():
    start = torch.randn(20, 6, generator=torch.Generator().manual_seed(1))
    ours, theirs, straight = (torch.nn.Parameter(start.clone()) for _ in range(3))
    row, sparse = RowAdam([ours], lr=0.01), torch.optim.SparseAdam([theirs], lr=0.01)
    reference = torch.optim.SparseAdam([straight], lr=0.01)  # 8 steps without a switch
    grads = _grads(20, 6, 8)
    for grad in grads[:5]:
        for param, opt in ((ours, row), (theirs, sparse), (straight, reference)):
            param.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(ours.detach(), straight.detach(), rtol=0, atol=1e-6)
    assert torch.equal(ours.detach()[-3:], start[-3:])  # untouched rows stay where they were
    assert row.state[ours]["step"] == reference.state[straight]["step"] == 5
    # a checkpoint written with SparseAdam resumes with RowAdam, and the other way round
    to_row, to_sparse = RowAdam([theirs], lr=0.01), torch.optim.SparseAdam([ours], lr=0.01)
    to_row.load_state_dict(sparse.state_dict())
    to_sparse.load_state_dict(row.state_dict())
    for grad in grads[5:]:
        for param, opt in ((ours, to_sparse), (theirs, to_row), (straight, reference)):
            param.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(ours.detach(), straight.detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(theirs.detach(), straight.detach(), rtol=0, atol=1e-6)


def test_row_adam_refuses_dense_gradients_and_bad_settings():
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    weight.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        RowAdam([weight]).step()
    with pytest.raises(ValueError, match="betas"):
        RowAdam([weight], betas=(0.9, 1.0))
