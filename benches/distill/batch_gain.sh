#!/usr/bin/env bash
# Batching across classes: dmgd wall-clock sampling seconds per image with 10 classes per DiT
# batch vs one class at a time, default threads, A/B/A/B. Compare only on a quiet machine.
#
#   benches/distill/batch_gain.sh [DIT_DIR]      (default: the shipped model)
set -euo pipefail
cd "$(dirname "$0")/../.."
dit=${1:-models/fashion-mnist-dit}
cargo build --release -q -p dmgd-cli
dmgd=${CARGO_TARGET_DIR:-target}/release/dmgd
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for rep in a b; do
  for batch in 10 1; do
    "$dmgd" distill --dit "$dit" --method dmgd --ipc 2 --class-batch "$batch" \
      --out "$out/bg-$batch-$rep" --cache-dir "$out/cache" >/dev/null
    "${PYTHON:-python3}" -c "import json,sys; t=json.load(open(sys.argv[1]))['details']['timings']; print('dmgd class-batch $batch rep $rep: wall s/image', round(t['sampling_seconds']/t['images_generated'], 3))" "$out/bg-$batch-$rep/manifest.json"
  done
done
