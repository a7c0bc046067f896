#!/usr/bin/env bash
# The paper's pipeline at real size, on the CPU, on random weights (a benchmark, not a test):
# DiT-XL/2 + an sd-vae-ft-mse-shaped VAE (benches/real-size/make_inputs.py), a 10-class
# ImageWoof-shaped ImageFolder of 256-px images, `distill --classes woof --ipc 1` with 50 steps,
# then `eval --net resnetap10 --protocol minimax` for EPOCHS epochs on its output. Each stage
# under /usr/bin/time -v (wall time, peak resident memory) into OUT/*.time; the distillation
# resumes (`--resume`) where an earlier run of this script stopped, image by image: with
# `--class-batch 1` each image (about 20 minutes on one thread) is written when done, where the
# default batch of 10 classes would write nothing for hours.
#
#   benches/real-size/run.sh [OUT]     (default runs/real-size)
#   DMGD=<binary> PYTHON=<python> IMAGES=20 EPOCHS=2 THREADS=1 (defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/real-size}
DMGD=${DMGD:-target/release/dmgd}
IMAGES=${IMAGES:-20}
EPOCHS=${EPOCHS:-2}
export CANDLE_NUM_THREADS=${THREADS:-1} RAYON_NUM_THREADS=${THREADS:-1}
if [ ! -f "$out/dit-xl-2-256-random.pt" ]; then
  /usr/bin/time -v "${PYTHON:-python3}" benches/real-size/make_inputs.py "$out" "$IMAGES" \
    2> "$out.inputs.time"
  mv "$out.inputs.time" "$out/inputs.time"
fi
stage() {  # stage NAME COMMAND...: runs it under time -v, keeping the log of every attempt
  local name=$1; shift
  echo "$(date -u +%FT%TZ) $*" >> "$out/$name.time"
  /usr/bin/time -v "$@" 2>> "$out/$name.time"
}
stage distill "$DMGD" distill --dit "$out/dit-xl-2-256-random.pt" \
  --vae "$out/sd-vae-ft-mse-random.safetensors" --data "$out/woof" --classes woof --ipc 1 \
  --steps 50 --class-batch 1 --out "$out/distill" --resume
stage eval "$DMGD" eval --train "$out/distill" --test "$out/woof" --classes woof \
  --net resnetap10 --protocol minimax --epochs "$EPOCHS" --test-every "$EPOCHS" --repeats 1 \
  --out "$out/eval" --overwrite
grep -h -E "^[0-9]{4}-|Elapsed|Maximum resident" "$out"/*.time
