#!/usr/bin/env bash
# Load check: a study of N one-epoch trials (default 60, fastText and CNN spaces) on a tiny store, 2 at a
# time. Fails unless every trial finished; prints the study's `done:` line, whose overhead figure is
# wall / (sum of trial training time / trials at a time): 1.0 = no cost beyond training (docs/reliability.md).
# Usage: scripts/load_study.sh [STORE] [N] [EPOCHS]; STORE defaults to /tmp/load-store (built if missing:
# python -m data_prep build --source imdb --per-class 150 --max-len 200 --vector-size 32).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${1:-/tmp/load-store}"
N="${2:-60}"
EPOCHS="${3:-1}"
PY="${PY:-.venv/bin/python}"
WORK="$(mktemp -d /tmp/load-study.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
[ -f "$STORE/manifest.json" ] || "$PY" -m data_prep build --source imdb --per-class 150 --max-len 200 \
    --vector-size 32 --out "$STORE"
cat > "$WORK/fasttext.yaml" <<'YAML'
arch: fasttext
fixed: {epochs: 1, max_len: 200}
search:
  lr: {type: float, low: 1.0e-3, high: 5.0e-2, log: true}
  bigram_buckets: {type: categorical, choices: [0, 20000]}
YAML
cat > "$WORK/cnn.yaml" <<'YAML'
arch: cnn
fixed: {epochs: 1, max_len: 200, widths: "3,4,5"}
search:
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
  filters: {type: int, low: 16, high: 64}
YAML
echo "load before: $(uptime)"
"$PY" -m study run --store "$STORE" --space "$WORK/fasttext.yaml" --space "$WORK/cnn.yaml" --name load \
    --storage-path "$WORK/exp" --num-samples "$((N / 2))" --max-epochs "$EPOCHS" --max-concurrent 2 | grep -v '^\['
finished=$("$PY" -m study status --storage-path "$WORK/exp" --name load --json | tail -1 |
    "$PY" -c 'import json,sys; print(sum(t["status"] == "TERMINATED" for t in json.load(sys.stdin)["trials"]))')
echo "finished trials: $finished of $N"
echo "load after:  $(uptime)"
[ "$finished" -eq "$N" ]
