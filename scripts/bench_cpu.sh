#!/usr/bin/env bash
# CPU benchmark suite (study/bench/suite.py): every speed target in one run, against this machine's
# matrix-product rate measured in the same run, with ratios to the textbook and original-study loops.
# Usage: scripts/bench_cpu.sh [STORE] [extra `study bench --suite` flags, e.g. --threads 2 --quick]
# STORE defaults to results/stores/bench (`make bench` builds it: python -m data_prep build --source imdb
# --per-class 1000 --max-len 400 --vector-size 300 --out results/stores/bench).
# Prints `uptime` before and after (other jobs on the cores change every figure), the table with ratios
# and targets, and the whole result as one JSON line last. Figures are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${1:-results/stores/bench}"
shift || true
PY="${PY:-.venv/bin/python}"
echo "load before: $(uptime)"
"$PY" -m study bench --store "$STORE" --suite --json "$@"
echo "load after:  $(uptime)"
