"""Which multi-objective sampler for small studies? TPE, NSGA-II and random search on a toy front.

    python scripts/sampler_check.py [--budgets 12,24,48] [--repeats 10]

No training: a closed-form stand-in for a fastText search space (learning rate on a log scale, batch
size, frozen or fine-tuned embeddings, bigram buckets, dropout) with an accuracy that peaks at one
learning rate and gains a little from fine-tuning and bigrams, and a cost that grows with bigrams,
fine-tuning and small batches, plus measurement noise. Each sampler runs the searcher's settings
(TPE: ``searcher.startup_trials``, constant liar; NSGA-II: Optuna's defaults) for each budget and random
seed; the score is the hypervolume of study/analysis/hypervolume.py against one fixed reference point.
It tells how the samplers behave at the budgets this study runs, not which wins on real trials.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from study.analysis.hypervolume import hypervolume  # noqa: E402
from study.search.searcher import startup_trials  # noqa: E402

REFERENCE_COST = 20.0


def toy(trial: optuna.Trial, rng: np.random.Generator) -> tuple[float, float]:
    lr = trial.suggest_float("lr", 1e-3, 5e-2, log=True)
    batch = trial.suggest_categorical("batch_size", [16, 32, 64, 128])
    freeze = trial.suggest_categorical("freeze_embeddings", [True, False])
    buckets = trial.suggest_categorical("bigram_buckets", [0, 20000, 100000])
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    acc = (0.5 + 0.33 * math.exp(-((math.log10(lr) - math.log10(0.012)) ** 2) / 0.3)
           + (0.0 if freeze else 0.04) + 0.015 * math.log1p(buckets / 20000) - 0.04 * dropout
           + rng.normal(0, 0.01))
    cost = (1 + buckets / 25000) * (1 if freeze else 2.5) * (64 / batch) ** 0.5 * math.exp(rng.normal(0, 0.1))
    return acc, cost


def run(sampler_name: str, budget: int, seed: int) -> float:
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(budget),
                                                          constant_liar=True),
                "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=samplers[sampler_name]())
    rng = np.random.default_rng(seed)
    study.optimize(lambda t: toy(t, rng), n_trials=budget)
    acc, cost = zip(*(t.values for t in study.trials))
    return hypervolume(acc, cost, chance=0.5, reference_cost=REFERENCE_COST)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", default="12,24,48")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"hypervolume (mean +- sd over {args.repeats} seeds); reference: accuracy 0.5, cost {REFERENCE_COST}")
    for budget in map(int, args.budgets.split(",")):
        row = []
        for name in ("tpe", "nsga2", "random"):
            scores = [run(name, budget, seed) for seed in range(args.repeats)]
            row.append(f"{name} {statistics.fmean(scores):.3f} +- {statistics.stdev(scores):.3f}")
        print(f"{budget:3d} trials: " + "   ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
