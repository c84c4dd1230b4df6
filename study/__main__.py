"""Command line for the study: ``python -m study COMMAND ...``.

    python -m study train --store /tmp/imdb1k --preset cnn_original --epochs 2
    python -m study bench --store /tmp/imdb1k --preset lstm_original --samples 512 --json
    python -m study bench --store /tmp/imdb1k --suite          # the CPU benchmark table (docs/benchmarks.md)

Adding a command: write a function that adds its arguments to an argparse parser and an entry function
``(args) -> int``, and add one line to ``COMMANDS`` below. A command reports bad user input by raising
``study.errors.UsageError("one line")``: it is printed as ``study NAME: error: ...`` on stderr and the
exit code is 2, with no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from study.errors import UsageError

# name -> (module, its argument function, its entry function, help). Modules are imported only when their
# command runs, so Ray, Optuna and torch cost nothing to a command that does not need them.
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "train": ("study.train.command", "add_arguments", "main",
              "train one config without Ray, print metrics per epoch"),
    "bench": ("study.bench.command", "add_arguments", "main",
              "measure training throughput (samples/s, tokens/s)"),
    "report": ("study.analysis.report", "add_arguments", "main",
               "trials table, Pareto fronts, plots and summary.md of a study"),
    "dashboard": ("study.analysis.dashboard", "add_arguments", "main",
                  "optuna-dashboard over a study's optuna.db on 127.0.0.1 (the dashboard extra)"),
    "run": ("study.search.command", "add_run_arguments", "run",
            "start a Ray Tune study over search-space files (all archs, one experiment)"),
    "resume": ("study.search.command", "add_resume_arguments", "resume",
               "continue an interrupted study: unfinished trials from their checkpoints"),
    "status": ("study.search.command", "add_status_arguments", "status",
               "per-trial status, metrics, node and GPU ids of a study (--json)"),
    "diagnose": ("study.diagnosis.command", "add_arguments", "main",
                 "why the LSTM predicts one class: baseline, probes, one-factor ablations"),
    "demo": ("study.demo", "add_arguments", "main",
             "bundled IMDB -> store -> study -> report + diagnosis, in one command"),
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
    for name, (*_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text,
                       formatter_class=_DefaultsFormatter)
    # Only the chosen command's module is imported to fill in its arguments.
    name = next((a for a in argv if a in COMMANDS), None)
    entry = None
    if name:
        module_name, add_name, entry_name, _ = COMMANDS[name]
        module = importlib.import_module(module_name)
        getattr(module, add_name)(sub.choices[name])
        entry = getattr(module, entry_name)
    args = parser.parse_args(argv)
    try:
        return int(entry(args) or 0)
    except UsageError as exc:
        print(f"study {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
