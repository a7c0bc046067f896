#!/usr/bin/env bash
# A/B/A/B: candle (2 threads and 1 thread) vs PyTorch (2 threads) on each DiT workload, then the
# DiT-XL/2 sampling memory probe. Output: JSON lines (see docs/BENCH-diffusion.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-diffusion}
export OMP_WAIT_POLICY=PASSIVE
ROUNDS=${ROUNDS:-2}
cargo bench -p dmgd-diffusion --bench dit --no-run 2>/dev/null
BENCH=$(ls -t "$CARGO_TARGET_DIR"/release/deps/dit-* | grep -v '\.d$' | head -1)
for workload in ${WORKLOADS:-forward-ti4 train-ti4 forward-s2 train-s2}; do
  for _ in $(seq "$ROUNDS"); do
    "$BENCH" "$workload"
    CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1 "$BENCH" "$workload"
    "${PYTHON:-python3}" benches/diffusion/dit_torch.py "$workload"
  done
done
if [ "${XL2:-1}" = 1 ]; then
  /usr/bin/time -v "$BENCH" xl2-sample 2>&1 | grep -E 'impl|Maximum resident'
fi
