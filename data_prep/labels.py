"""Labels: map raw labels to class ids, balance the classes, and split train / valid / test.

All three steps are vectorised over the whole corpus (numpy / pandas; the only Python loops run over the
handful of classes) and seeded, so the same corpus and seed always give the same rows in the same splits.

    codes, class_names, dropped = encode_labels(raw_labels, label_map)
    rows = balance(codes, per_class=None, seed=15)           # row indices, shuffled across classes
    split_codes = stratified_split(codes[rows], 0.3, 0.1, 15) # 0 train, 1 valid, 2 test (store.SPLITS)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data_prep.sources import PrepError

TRAIN, VALID, TEST = 0, 1, 2


def encode_labels(raw_labels, label_map: dict[str, str] | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Raw label strings -> (codes (N,) int64 with -1 for dropped rows, class_names, dropped mask (N,)).

    With a map, class order is the order of first appearance in the map and rows whose raw label is not in
    the map are dropped (so a map can also select classes). Without one, the labels are the class names,
    ordered numerically when they are all numbers, else alphabetically.
    """
    raw = pd.Series(np.asarray(raw_labels, dtype=object)).astype(str)
    if label_map:
        class_names = list(dict.fromkeys(label_map.values()))
        names = raw.map(label_map)  # NaN where unmapped
    else:
        uniques = raw.unique()
        numeric = pd.to_numeric(pd.Series(uniques), errors="coerce")
        if numeric.notna().all():
            class_names = [str(u) for u in np.asarray(uniques)[np.argsort(numeric.to_numpy(), kind="stable")]]
        else:
            class_names = sorted(str(u) for u in uniques)
        names = raw
    codes = pd.Categorical(names, categories=class_names).codes.astype(np.int64)
    dropped = codes < 0
    if dropped.all():
        shown = ", ".join(sorted(map(str, raw.unique()))[:10])
        raise PrepError(f"no label matches --label-map (labels seen: {shown})")
    present = np.unique(codes[~dropped])
    if len(present) < 2:
        raise PrepError(f"only one class ({class_names[present[0]]!r}) in the data; need at least two")
    if len(present) < len(class_names):
        # A map that names a class the data never has would give the model an impossible output.
        absent = [class_names[i] for i in range(len(class_names)) if i not in set(present.tolist())]
        raise PrepError(f"class(es) {', '.join(absent)} from --label-map have no rows")
    return codes, class_names, dropped


def class_counts(codes: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(codes[codes >= 0], minlength=num_classes)


def balance(codes: np.ndarray, per_class: int | None, seed: int,
            class_names: list[str] | None = None) -> np.ndarray:
    """Indices of ``per_class`` random rows of every class (default: the smallest class's size), shuffled.

    Rows with code -1 are never chosen. The result interleaves the classes at random (not class-ordered).
    """
    num_classes = int(codes.max()) + 1
    counts = class_counts(codes, num_classes)
    smallest = int(counts.min())
    if per_class is None:
        per_class = smallest
    elif per_class > smallest:
        name = class_names[int(counts.argmin())] if class_names else str(int(counts.argmin()))
        raise PrepError(f"--per-class {per_class} is larger than class {name!r}, which has {smallest} rows")
    rng = np.random.default_rng(seed)
    candidates = rng.permutation(np.flatnonzero(codes >= 0))
    # Stable sort by class keeps the random order within each class; the rank inside a class is the
    # position minus the first position of that class; keep ranks below per_class.
    order = np.argsort(codes[candidates], kind="stable")
    by_class = candidates[order]
    cls = codes[by_class]
    first = np.searchsorted(cls, cls, side="left")
    chosen = by_class[(np.arange(len(by_class)) - first) < per_class]
    return rng.permutation(chosen)


def stratified_split(codes: np.ndarray, test_size: float, valid_size: float, seed: int) -> np.ndarray:
    """Split codes (N,) int8: per class, round(n*test_size) rows to test, then round(rest*valid_size) of
    the rest to valid, the remainder to train. Row choice is random (seeded)."""
    rng = np.random.default_rng(seed + 1)  # independent of the balancing draw with the same seed
    split = np.full(len(codes), TRAIN, dtype=np.int8)
    for c in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == c))
        n_test = int(round(len(rows) * test_size))
        n_valid = int(round((len(rows) - n_test) * valid_size))
        split[rows[:n_test]] = TEST
        split[rows[n_test:n_test + n_valid]] = VALID
    sizes = np.bincount(split, minlength=3)
    if sizes.min() == 0:
        raise PrepError(f"too few rows ({len(codes)}) for --test-size {test_size} and --valid-size "
                        f"{valid_size}: a split would be empty (train/valid/test = {sizes.tolist()})")
    return split
