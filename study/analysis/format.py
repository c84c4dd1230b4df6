"""How numbers read in the report, the page and the diagnosis: one function per kind of figure.

    fixed(0.8512, 3) -> "0.851"     points(0.8512) -> "85.1"     percent(0.8512) -> "85.1%"
    short(12345) -> "12.3k"          count(13.4e6) -> "13.40M"     duration(95) -> "0:01:35 (95 s)"
    ratio(12.3) -> "12x"             value(0.00123) -> "0.00123"   cell(2.0) -> "2"

A missing value (None, NaN, pandas NA) reads "n/a" everywhere.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

MISSING = "n/a"


def is_missing(v) -> bool:
    if v is None or v is pd.NA:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(float(v))


def _number(x):
    x = pd.to_numeric(x, errors="coerce")
    return None if x is None or pd.isna(x) else float(x)


def fixed(x, digits: int) -> str:
    """A number with ``digits`` decimals."""
    x = _number(x)
    return MISSING if x is None else f"{x:.{digits}f}"


def points(x) -> str:
    """An accuracy in percentage points, one decimal, no sign: 0.8512 -> "85.1"."""
    x = _number(x)
    return MISSING if x is None else f"{100.0 * x:.1f}"


def percent(x) -> str:
    """A share with a percent sign: 0.8512 -> "85.1%"."""
    x = _number(x)
    return MISSING if x is None else f"{100.0 * x:.1f}%"


def short(x) -> str:
    """A cost on a front: three significant digits, k/M above ten thousand."""
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def count(n) -> str:
    """A parameter count: 13.40M, 55.0k, 602."""
    n = _number(n)
    if n is None:
        return MISSING
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


def duration(s) -> str:
    """Seconds below a minute, else h:mm:ss with the seconds beside."""
    s = _number(s)
    if s is None:
        return MISSING
    if s < 60:
        return f"{s:.3g} s"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d} ({s:.0f} s)"


def ratio(r: float) -> str:
    return f"{r:.2f}x" if r < 2 else f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def value(v, significant: int = 3) -> str:
    """A hyperparameter value: lists joined, whole floats as integers, others to ``significant`` digits."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return ",".join(map(str, v))
    if is_missing(v):
        return MISSING
    if isinstance(v, (float, np.floating)) and not isinstance(v, bool):
        # NaN in a column makes pandas store its integers as floats
        return str(int(v)) if float(v).is_integer() else f"{float(v):.{significant}g}"
    return str(v)


def cell(v) -> str:
    """A value in the page's tooltip: like ``value`` with four significant digits, lists spaced."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(str(x) for x in v)
    return value(v, significant=4)


def as_bool(v):
    """True/False from booleans, 0/1 and their strings; None when unknown."""
    if isinstance(v, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(v.strip().lower())
    return None if is_missing(v) else bool(v)
