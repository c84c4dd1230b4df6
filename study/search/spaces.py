"""Search spaces: one YAML file per architecture -> a validated ``SearchSpace``.

A file names its architecture, the values it fixes and the ranges it searches, using the flat config keys
of ``study.train.config.TrainConfig`` (the same keys as presets and reports)::

    arch: lstm
    fixed: {epochs: 5, padding: pre, shuffle: true}
    search:
      hidden_size: {type: int, low: 32, high: 256, log: true}
      lr:          {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      readout:     {type: categorical, choices: [last_step, final_state, max, mean]}
    compare: [readout]        # optional: keys whose values the report compares (see below)

Parameter types: ``float`` / ``int`` (``low``, ``high``, optional ``log`` or ``step``) and ``categorical``
(``choices``: strings, numbers or booleans; a CNN's ``widths`` is a comma string like "3,4,5" because a
categorical cannot hold lists). ``compare`` marks categorical keys whose values the report sets side by
side (``freeze_embeddings``, ``embedding``, ``readout``): the searcher gives every value of such a key
an (almost) equal share of the architecture's trials, in the order ``balanced_assignments`` fixes, and
the sampler searches the rest. This module is the one place where a file becomes Optuna distributions
(``optuna_distributions``); Optuna is imported only inside that function so parsing stays light.

    python -m study.search.spaces search_spaces/*.yaml      # check files, print what they search
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from study.train.config import ARCHS as ARCHES  # the architectures the trainer knows: one list
from study.train.config import NETWORK_ARCHS
TOP_KEYS = {"arch", "fixed", "search", "description", "compare"}
PARAM_KEYS = {"float": {"type", "low", "high", "log", "step"},
              "int": {"type", "low", "high", "log", "step"},
              "categorical": {"type", "choices"}}


class SpaceError(ValueError):
    """A malformed search-space file; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()


@dataclass(frozen=True)
class SearchSpace:
    arch: str
    fixed: dict
    params: dict[str, Param]
    path: str = ""
    description: str = field(default="", compare=False)
    compared: tuple[str, ...] = ()  # categorical keys every value of which gets an equal share of trials

    def fixed_with(self, overrides: dict) -> dict:
        """The space's fixed keys with ``study run``'s overrides (``--max-epochs``, ``--seed``) and its arch.
        ``--max-epochs`` is for the networks' epoch loop: a one-fit architecture (linear) keeps its own."""
        if self.arch not in NETWORK_ARCHS:
            overrides = {k: v for k, v in overrides.items() if k != "epochs"}
        return {**self.fixed, **overrides, "arch": self.arch}

    def corners(self) -> list[dict]:
        """Flat configs at the edges of the space (every low, every high, every choice) for validation."""
        low = {n: (p.choices[0] if p.type == "categorical" else p.low) for n, p in self.params.items()}
        high = {n: (p.choices[-1] if p.type == "categorical" else p.high) for n, p in self.params.items()}
        points = [low, high]
        for name, param in self.params.items():
            points += [{**low, name: choice} for choice in param.choices[1:-1]]
        return [{**self.fixed, **point, "arch": self.arch} for point in points]


def _fail(path: str, key: str, why: str) -> SpaceError:
    return SpaceError(f"{path}: key {key!r}: {why}")


def _number(path: str, key: str, value, kind: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, key, f"expected a number, got {value!r}")
    if kind == "int" and float(value) != int(value):
        raise _fail(path, key, f"expected an integer, got {value!r}")
    return int(value) if kind == "int" else float(value)


def _param(path: str, name: str, spec) -> Param:
    key = f"search.{name}"
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_KEYS:
        raise _fail(path, key, "expected a mapping with type: float | int | categorical")
    kind = spec["type"]
    unknown = set(spec) - PARAM_KEYS[kind]
    if unknown:
        raise _fail(path, f"{key}.{sorted(unknown)[0]}", f"not allowed for type {kind}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _fail(path, f"{key}.choices", "expected a non-empty list")
        for choice in choices:
            if not isinstance(choice, (str, int, float, bool)):
                raise _fail(path, f"{key}.choices", f"choice {choice!r} is not a string, number or bool")
        if len(set(map(repr, choices))) != len(choices):
            raise _fail(path, f"{key}.choices", "choices repeat")
        return Param(name, kind, choices=tuple(choices))
    for bound in ("low", "high"):
        if bound not in spec:
            raise _fail(path, f"{key}.{bound}", "missing")
    low, high = (_number(path, f"{key}.{b}", spec[b], kind) for b in ("low", "high"))
    if not low < high:
        raise _fail(path, key, f"low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _fail(path, f"{key}.log", f"expected true or false, got {log!r}")
    if log and low <= 0:
        raise _fail(path, f"{key}.low", "must be > 0 with log: true")
    step = spec.get("step")
    if step is not None:
        step = _number(path, f"{key}.step", step, kind)
        if log or step <= 0:
            raise _fail(path, f"{key}.step", "must be > 0 and cannot be combined with log: true")
    if any(math.isnan(v) or math.isinf(v) for v in (low, high)):
        raise _fail(path, key, "bounds must be finite")
    return Param(name, kind, low=low, high=high, log=log, step=step)


def parse_space(data, path: str = "<space>") -> SearchSpace:
    """Validate the structure of one parsed YAML document (keys are checked against the trainer too)."""
    if not isinstance(data, dict):
        raise SpaceError(f"{path}: expected a mapping with keys arch, fixed, search")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise _fail(path, sorted(unknown)[0], f"unknown top-level key (allowed: {', '.join(sorted(TOP_KEYS))})")
    arch = data.get("arch")
    if arch not in ARCHES:
        raise _fail(path, "arch", f"expected one of {', '.join(ARCHES)}, got {arch!r}")
    fixed = data.get("fixed") or {}
    search = data.get("search") or {}
    for key, value in (("fixed", fixed), ("search", search)):
        if not isinstance(value, dict):
            raise _fail(path, key, "expected a mapping")
    if not search:
        raise _fail(path, "search", "nothing to search: give at least one parameter")
    if "arch" in fixed or "arch" in search:
        raise _fail(path, "arch", "set it at the top level only")
    both = set(fixed) & set(search)
    if both:
        raise _fail(path, sorted(both)[0], "appears in both fixed and search")
    params = {str(name): _param(path, str(name), spec) for name, spec in search.items()}
    space = SearchSpace(arch=arch, fixed=dict(fixed), params=params, path=path,
                        description=str(data.get("description", "")),
                        compared=_compared(path, data.get("compare"), params))
    _check_keys(space)
    return space


def _compared(path: str, keys, params: dict[str, Param]) -> tuple[str, ...]:
    if keys is None:
        return ()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise _fail(path, "compare", "expected a list of distinct search keys")
    for key in keys:
        if key not in params or params[key].type != "categorical":
            raise _fail(path, "compare", f"{key!r} is not a categorical key under search")
    return tuple(keys)


def balanced_assignments(space: SearchSpace, count: int) -> list[dict]:
    """The compared keys' values for an architecture's first ``count`` trials: at any prefix, every value
    of every compared key has been used an equal number of times, within one. Deterministic, so a
    resumed study recomputes the same sequence.

    Each step takes a combination of least-used values (one always exists: the product holds every
    mix); among those, the combination tried least often, then the one whose pairs of values have met
    least (so that frozen embeddings meet every readout, not only some); the file's choice order breaks
    the remaining ties."""
    import itertools
    from collections import Counter

    keys = space.compared
    if not keys:
        return [{} for _ in range(count)]
    combos = list(itertools.product(*(range(len(space.params[k].choices)) for k in keys)))
    used, tried, met = Counter(), Counter(), Counter()

    def pairs_of(combo):
        return [(i, a, j, b) for (i, a), (j, b) in itertools.combinations(enumerate(combo), 2)]

    out = []
    for _ in range(count):
        pick = min(combos, key=lambda c: (sum(used[i, v] for i, v in enumerate(c)), tried[c],
                                          sum(met[p] for p in pairs_of(c))))
        used.update(enumerate(pick))
        tried[pick] += 1
        met.update(pairs_of(pick))
        out.append({k: space.params[k].choices[v] for k, v in zip(keys, pick)})
    return out


def _check_keys(space: SearchSpace) -> None:
    """Every corner of the space must be a valid TrainConfig: unknown or foreign keys fail here."""
    from study.train.config import TrainConfig  # owns the flat key vocabulary

    for point in space.corners():
        try:
            TrainConfig.from_flat(point)
        except (ValueError, TypeError) as exc:
            raise SpaceError(f"{space.path}: {exc}") from None


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate one search-space file."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpaceError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpaceError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_space(data, path)


def optuna_distributions(space: SearchSpace) -> dict:
    """The space as Optuna distributions, keyed by flat config key (fixed values are not included)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, p in space.params.items():
        if p.type == "categorical":
            out[name] = CategoricalDistribution(list(p.choices))
        elif p.type == "int":
            out[name] = IntDistribution(p.low, p.high, log=p.log, step=p.step or 1)
        else:
            out[name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return out


def describe(space: SearchSpace) -> str:
    lines = [f"{space.arch} ({space.path}): fixed {space.fixed}"]
    for p in space.params.values():
        rng = list(p.choices) if p.type == "categorical" else f"[{p.low}, {p.high}]" + (" log" if p.log else "")
        lines.append(f"  {p.name:18s} {p.type:12s} {rng}" + ("  (compared: balanced)" if p.name in space.compared else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        for file in sys.argv[1:]:
            print(describe(load_space(file)))
    except SpaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
