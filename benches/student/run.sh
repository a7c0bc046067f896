#!/bin/sh
# Student benchmark, Rust and PyTorch interleaved A/B/A/B in one session (the machine is
# shared and noisy; compare medians from the same run). From the repository root:
#     sh benches/student/run.sh
set -e
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-student}"
cargo bench -p dmgd-student --bench train_step --no-run 2>/dev/null
for round in 1 2; do
    echo "== round $round"
    cargo bench -p dmgd-student --bench train_step 2>/dev/null | grep -E '^rust'
    OMP_WAIT_POLICY=PASSIVE "${PYTHON:-python3}" benches/student/train_step.py
done
uptime
