#!/usr/bin/env bash
# DMGD's cost over plain DiT sampling, and the gain of batching across classes, on this machine.
# Runs `dmgd distill` at the same settings with method dit and dmgd, with classes batched 10 at
# a time and one at a time, and reads the sampling seconds from each manifest.
#
#   benches/distill/overhead.sh [IPC] [DIT_DIR]      (defaults: 2, the shipped model)
#
# Writes a Markdown table to stdout; docs/BENCH-distill.md holds a run of it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ipc=${1:-2}
dit=${2:-models/fashion-mnist-dit}
cargo build --release -q -p dmgd-cli
bin=target/release/dmgd
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Supports are computed once (and cached) before timing anything.
$bin distill --dit "$dit" --ipc 1 --steps 2 --out "$out/warm" --cache-dir "$out/cache" >/dev/null

per_image() { # manifest -> sampling seconds per generated image
  python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['details']['timings']; print(t['sampling_seconds']/t['images_generated'])" "$1"
}
run() { # name, extra flags...
  local name=$1; shift
  $bin distill --dit "$dit" --ipc "$ipc" --out "$out/$name" --cache-dir "$out/cache" "$@" >/dev/null
  per_image "$out/$name/manifest.json"
}
echo "| setting | dit s/image | dmgd s/image | dmgd / dit |"
echo "|---|---|---|---|"
for batch in 10 1; do
  # Interleaved A/B/A/B: the medians of two runs each.
  d1=$(run "dit-$batch-a" --method dit --class-batch "$batch")
  g1=$(run "dmgd-$batch-a" --method dmgd --class-batch "$batch")
  d2=$(run "dit-$batch-b" --method dit --class-batch "$batch" --seed 1)
  g2=$(run "dmgd-$batch-b" --method dmgd --class-batch "$batch" --seed 1)
  python3 - "$batch" "$d1" "$d2" "$g1" "$g2" <<'PY'
import sys
b, d1, d2, g1, g2 = sys.argv[1], *map(float, sys.argv[2:])
d, g = (d1 + d2) / 2, (g1 + g2) / 2
print(f"| class batch {b}, IPC per class as given | {d:.3f} ({d1:.3f}, {d2:.3f}) | {g:.3f} ({g1:.3f}, {g2:.3f}) | {g / d:.3f} |")
PY
done
