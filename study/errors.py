"""User-facing errors: one exception type, one conversion, one way to print them.

A command reports bad user input (a flag, a config key, a store path, a space file) by raising
``UsageError("one line")``; the CLI (``study/__main__.py``) prints ``study NAME: error: ...`` on stderr and
exits with code 2, never a traceback. Lower layers raise their own precise types (``ValueError`` from a
config, ``StoreError``, ``SpaceError``); a command turns the ones that mean "bad input" into a
``UsageError`` at its edge with ``reported_as_usage``:

    with reported_as_usage(ValueError, StoreError):
        cfg = resolve_config(...)
"""
from __future__ import annotations

from contextlib import contextmanager


class UsageError(Exception):
    """Bad user input: the CLI prints its one-line message and exits 2."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def reported_as_usage(*kinds: type[BaseException]):
    """Re-raise any of ``kinds`` raised inside the block as a one-line ``UsageError``."""
    try:
        yield
    except kinds as exc:
        raise UsageError(one_line(exc)) from None
