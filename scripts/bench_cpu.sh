#!/usr/bin/env bash
# CPU benchmark suite: the original study's architectures trained our way vs its own loops, same run.
# Usage: scripts/bench_cpu.sh [STORE] [extra `study bench --suite` flags, e.g. --threads 2 --quick]
# STORE defaults to /tmp/imdb1k (python -m data_prep build --source imdb --per-class 1000 --max-len 400).
# Prints the machine load before and after (other jobs on the cores change every figure), the table with
# ratios and targets, and the whole result as one JSON line last. Figures are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${1:-/tmp/imdb1k}"
shift || true
PY="${PY:-.venv/bin/python}"
echo "load before: $(uptime)"
"$PY" -m study bench --store "$STORE" --suite --json "$@"
echo "load after:  $(uptime)"
