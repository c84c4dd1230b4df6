#!/usr/bin/env bash
# The GPU benchmark in one call: card and versions, then `study bench --gpu-suite` (every preset
# at its batch size and at a GPU-sized batch, peak GPU memory, the original study's loops on the same GPU, GPU vs
# CPU model route check), then, if BEFORE names an older copy of the code, the same presets with that code.
#
#   scripts/gpu_bench.sh [STORE]                     # default store .carry/imdb1k, DEVICE=cuda, OUT=results/gpu_bench
#   DEVICE=cpu SCALE=0.05 ROUNDS=1 BIG_BATCH=16 scripts/gpu_bench.sh /tmp/store   # dry run on a CPU
#
# No install: runs from the checkout with PYTHONPATH=. (needs torch, numpy, pyarrow, pyyaml; no Ray,
# Optuna or gensim). Writes env.txt, log.txt, gpu_bench.txt, gpu_bench.json (and before.txt) under OUT.
set -uo pipefail
STORE=${1:-.carry/imdb1k}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-results/gpu_bench}
SCALE=${SCALE:-1.0}
ROUNDS=${ROUNDS:-2}
BIG_BATCH=${BIG_BATCH:-512}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

{
  date -u
  nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not available"
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'available',
torch.cuda.is_available(), 'cuDNN', torch.backends.cudnn.version() if torch.cuda.is_available() else None)"
} 2>&1 | tee "$OUT/env.txt"

start=$(date +%s)
PYTHONPATH=. "$PY" -m study bench --store "$STORE" --gpu-suite --device "$DEVICE" --scale "$SCALE" \
  --rounds "$ROUNDS" --big-batch "$BIG_BATCH" --out "$OUT" 2>&1 | tee "$OUT/log.txt"
status=$?
echo "gpu-suite: exit $status after $(( $(date +%s) - start )) s"

if [ -n "${BEFORE:-}" ] && [ -d "$BEFORE/study" ]; then
  # The same presets at their batch sizes with an older copy of study/ (e.g. `git archive` of the last
  # commit before the GPU changes), same store, same card, same process settings.
  PYTHONPATH="$BEFORE" "$PY" -P - "$STORE" "$DEVICE" "$SCALE" <<'PYEOF' 2>&1 | tee "$OUT/before.txt"
import sys
import study.bench as b
from data_prep import store as store_mod
from study.config import TrainConfig
from study.presets import preset
store_path, device, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = store_mod.load(store_path)
n = len(store.indices("train"))
print(f"before ({b.__file__}): preset, batch, samples/s, at mean len, tokens/s")
for name, epochs in (("cnn_seed", 10), ("cnn_kim", 10), ("lstm_seed", 3), ("lstm_fixed", 3), ("fasttext", 10)):
    cfg = TrainConfig.from_flat(preset(name))
    best = None
    for _ in range(2):
        try:
            r = b.bench(cfg, store, samples=max(cfg.batch_size, int(epochs * n * scale)), warmup=5, device=device,
                        name=name)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: ERROR {type(exc).__name__}: {exc}")
            break
        best = r if best is None or r["samples_per_s"] > best["samples_per_s"] else best
    if best:
        print(f"before {name} b{cfg.batch_size}: {best['samples_per_s']:.0f} {best['samples_per_s_at_mean_len']:.0f} "
              f"{best['tokens_per_s']:.0f}")
PYEOF
fi
echo "total: $(( $(date +%s) - start )) s"
exit $status
