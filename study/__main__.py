"""Command line for the study: ``python -m study COMMAND ...``.

    python -m study train --store /tmp/imdb1k --preset cnn_seed --epochs 2
    python -m study bench --store /tmp/imdb1k --preset lstm_seed --samples 512 --json
    python -m study bench --store /tmp/imdb1k --suite          # the CPU benchmark table (docs/benchmarks.md)

Adding a command: write a module that defines ``add_arguments(parser)`` (argparse) and ``main(args) -> int``,
and add one line ``"name": ("module.path", "help text")`` to ``COMMANDS`` below. Modules are imported only
when their command runs, so a command's heavy imports (Ray, Optuna) cost nothing elsewhere. A command
reports bad user input by raising ``study.config.UsageError("one line")``: it is printed as
``study NAME: error: ...`` on stderr and the exit code is 2, with no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from study.config import UsageError

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("study.trainer", "train one config without Ray, print metrics per epoch"),
    "bench": ("study.bench", "measure training throughput (samples/s, tokens/s)"),
    "report": ("study.report", "trials table, Pareto fronts, plots and summary.md of a study"),
    "run": ("study.launch", "start a Ray Tune study over search-space files (all archs, one experiment)"),
    "resume": ("study.launch", "continue an interrupted study: unfinished trials from their checkpoints"),
    "status": ("study.launch", "per-trial status, metrics, node and GPU ids of a study (--json)"),
    "diagnose": ("study.diagnose", "why the LSTM predicts one class: baseline, probes, one-factor ablations"),
    "demo": ("study.demo", "bundled IMDB -> store -> study -> report + diagnosis, in one command"),
}


class _DefaultsFormatter(argparse.HelpFormatter):
    """Shows each option's default where it has one (required options and unset flags have none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if not unset and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage dump -> one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="study", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text,
                       formatter_class=_DefaultsFormatter)
    # Only the chosen command's module is imported to fill in its arguments.
    name = next((a for a in argv if a in COMMANDS), None)
    module = importlib.import_module(COMMANDS[name][0]) if name else None
    if module is not None:
        module.add_arguments(sub.choices[name])
    args = parser.parse_args(argv)
    try:
        return int(module.main(args) or 0)
    except UsageError as exc:
        print(f"study {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
