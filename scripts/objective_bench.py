"""Does aiming at the front pay? The same trial budget with ``--objective accuracy`` and ``--objective
front``, on the same store and random seeds, and the hypervolume of each study's trials.

    python scripts/objective_bench.py --store stores/imdb2k --space search_spaces/fasttext.yaml \\
        --space search_spaces/cnn.yaml --num-samples 8 --max-epochs 3 --seeds 1,2,3 \\
        --storage-path /tmp/objective-bench [--cost train_time_s] [--max-concurrent 2]

Each (objective, seed) pair is one ``python -m study run`` (its own local Ray), named ``<objective>-s<seed>``
under ``--storage-path``; a pair that already finished there is read, not run again, so an interrupted
benchmark continues. All studies are scored against one reference point (chance accuracy, and twice the
costliest finished trial of any of them: study/analysis/hypervolume.py), so their hypervolumes compare.
The last lines say whether the difference of the means exceeds the noise of repeating a study: the
spread between seeds of the same objective (two standard errors of the difference).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from study import experiment  # noqa: E402
from study.analysis import hypervolume, pareto  # noqa: E402
from study.analysis.results import trials_frame  # noqa: E402
from study.analysis.table import trials_table  # noqa: E402

OBJECTIVES = ("accuracy", "front")


def run_study(args, objective: str, seed: int) -> Path:
    name = f"{objective}-s{seed}"
    path = Path(experiment.experiment_path(args.storage_path, name))
    launch = experiment.read_json(str(path / experiment.LAUNCH_FILE))
    if launch is not None and (path / experiment.TRIALS_FILE).exists():
        table = trials_table(trials_frame(str(path)))
        if len(table) == launch["total_trials"] and not (table["stop_reason"] == "running").any():
            print(f"{name}: already done, reading it", flush=True)
            return path
    cmd = [sys.executable, "-m", "study", "resume" if launch else "run", "--storage-path", args.storage_path,
           "--name", name]
    if not launch:
        cmd += ["--store", args.store, "--num-samples", str(args.num_samples), "--seed", str(seed),
                "--objective", objective, "--cost", args.cost]
        cmd += [x for space in args.space for x in ("--space", space)]
        cmd += ["--max-epochs", str(args.max_epochs)] if args.max_epochs else []
        cmd += ["--max-concurrent", str(args.max_concurrent)] if args.max_concurrent else []
    started = time.time()
    code = subprocess.call(cmd, cwd=ROOT)
    print(f"{name}: exit {code} after {time.time() - started:.0f} s", flush=True)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True)
    p.add_argument("--space", action="append", required=True)
    p.add_argument("--num-samples", type=int, required=True, help="trials per search space, per study")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--seeds", default="1,2,3", help="comma-separated random seeds, one study per objective each")
    p.add_argument("--storage-path", required=True)
    p.add_argument("--cost", default="train_time_s")
    p.add_argument("--max-concurrent", type=int)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    tables = {(o, s): trials_table(trials_frame(str(run_study(args, o, s)))) for s in seeds for o in OBJECTIVES}
    chance = min(hypervolume.chance_of(t) or 1.0 for t in tables.values())
    costliest = max(float(t.loc[pareto.eligible(t, args.cost), args.cost].max()) for t in tables.values())
    reference = {"accuracy": chance, "cost": hypervolume.REFERENCE_FACTOR * costliest}
    print(f"\nreference point: {pareto.ACCURACY} = {chance:.3f} (chance), {args.cost} = {reference['cost']:.1f} "
          f"({hypervolume.REFERENCE_FACTOR:g} x the costliest finished trial of all {len(tables)} studies)")
    print(f"{'objective':10s} {'seed':>4s} {'hypervolume':>11s} {'front':>5s} {'finished':>8s} "
          f"{'early-stopped':>13s} {'best val_acc':>12s} {'trained s':>9s}")
    scores: dict[str, list[float]] = {o: [] for o in OBJECTIVES}
    for (objective, seed), t in sorted(tables.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hv = hypervolume.front_hypervolume(t, args.cost, reference=reference)["value"]
        scores[objective].append(hv)
        print(f"{objective:10s} {seed:4d} {hv:11.4f} {len(pareto.front_ids(t, args.cost)):5d} "
              f"{int((t['stop_reason'] == 'finished').sum()):8d} {int((t['stop_reason'] == 'early-stopped').sum()):13d} "
              f"{t['val_acc'].max():12.3f} {t['train_time_s'].sum():9.0f}")
    means = {o: statistics.fmean(v) for o, v in scores.items()}
    sds = {o: statistics.stdev(v) if len(v) > 1 else float("nan") for o, v in scores.items()}
    for o in OBJECTIVES:
        print(f"{o:10s} mean {means[o]:.4f}  sd {sds[o]:.4f}  over seeds {seeds}")
    diff = means["front"] - means["accuracy"]
    se = (sds["front"] ** 2 / len(seeds) + sds["accuracy"] ** 2 / len(seeds)) ** 0.5
    verdict = ("beyond the noise" if abs(diff) > 2 * se else "within the noise") if len(seeds) > 1 else \
        "noise unknown (one seed)"
    print(f"front - accuracy = {diff:+.4f}; two standard errors = {2 * se:.4f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
