"""One optimizer step of a lookup table's sparse gradient: ``torch.optim.SparseAdam`` against the trainer's
``RowAdam`` (study/train/row_adam.py), on the same gradients, alternated, in one process.

    python scripts/sparse_adam_bench.py [--rows 20000] [--dim 300] [--touched 3000] [--steps 20] [--threads 1]

The defaults are a fastText or fine-tuned-embedding step on a 300-d store: a batch touches about 2,000-3,000
distinct words. Prints the largest difference between the two tables after the first steps (the same
update, so float rounding only) and ms per step for each, three rounds: the first also pays the first touch
of the moments' memory, the later two show the steady cost and the spread of this machine.
"""
from __future__ import annotations

import argparse
import time

import torch

from study.train.row_adam import RowAdam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--touched", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    grads = [torch.sparse_coo_tensor(torch.randperm(args.rows)[:args.touched].unsqueeze(0),
                                     torch.randn(args.touched, args.dim), (args.rows, args.dim),
                                     check_invariants=True) for _ in range(args.steps)]
    start = torch.randn(args.rows, args.dim)
    tables = {name: torch.nn.Parameter(start.clone()) for name in ("SparseAdam", "RowAdam")}
    optimizers = {"SparseAdam": torch.optim.SparseAdam([tables["SparseAdam"]]),
                  "RowAdam": RowAdam([tables["RowAdam"]])}
    for name, opt in optimizers.items():  # not timed: the first step allocates the moments
        tables[name].grad = grads[0]
        opt.step()
    for rnd in range(3):
        for name, opt in optimizers.items():
            began = time.perf_counter()
            for grad in grads:
                tables[name].grad = grad
                opt.step()
            print(f"round {rnd + 1}: {name:10s} {(time.perf_counter() - began) / len(grads) * 1000:6.2f} ms/step",
                  flush=True)
        if rnd == 0:
            gap = (tables["SparseAdam"].detach() - tables["RowAdam"].detach()).abs().max().item()
            print(f"largest difference between the tables after {len(grads) + 1} steps: {gap:.2e}", flush=True)


if __name__ == "__main__":
    main()
