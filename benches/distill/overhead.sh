#!/usr/bin/env bash
# DMGD's cost over plain DiT sampling, and the gain of batching across classes, on this machine.
# Runs `dmgd distill` at the same settings with method dit and dmgd, with classes batched 10 at
# a time and one at a time, and measures the CPU time (user + sys) of each process per image
# generated, with one rayon thread: CPU time does not count waiting for a busy core, so the
# ratios hold on a shared machine. Wall-clock sampling seconds per image (from the manifests)
# are printed beside them; compare those only on a quiet machine.
#
#   benches/distill/overhead.sh [IPC] [DIT_DIR]      (defaults: 2, the shipped model)
#
# Writes a Markdown table to stdout; docs/BENCH-distill.md holds a run of it.
set -euo pipefail
cd "$(dirname "$0")/../.."
ipc=${1:-2}
dit=${2:-models/fashion-mnist-dit}
cargo build --release -q -p dmgd-cli
bin=${CARGO_TARGET_DIR:-target}/release/dmgd
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
# Supports are computed once (and cached) before timing anything.
for seed in 0 1; do
  $bin distill --dit "$dit" --ipc 1 --steps 2 --seed $seed --out "$out/warm$seed" --cache-dir "$out/cache" >/dev/null
done

run() { # name, extra flags... -> "cpu_seconds_per_image wall_sampling_seconds_per_image"
  local name=$1; shift
  "${PYTHON:-python3}" - "$out/$name" "$bin" distill --dit "$dit" --ipc "$ipc" --out "$out/$name" --cache-dir "$out/cache" "$@" <<'PY'
import json, resource, subprocess, sys
out, cmd = sys.argv[1], sys.argv[2:]
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
t = json.load(open(out + "/manifest.json"))["details"]["timings"]
n = t["images_generated"]
print((r.ru_utime + r.ru_stime) / n, t["sampling_seconds"] / n)
PY
}
echo "| classes per DiT batch | dit CPU s/image | dmgd CPU s/image | dmgd / dit (CPU) | dit wall s/image | dmgd wall s/image |"
echo "|---|---|---|---|---|---|"
for batch in 10 1; do
  # Interleaved A/B/A/B with two seeds; means of the two.
  read -r dc1 dw1 < <(run "dit-$batch-a" --method dit --class-batch "$batch")
  read -r gc1 gw1 < <(run "dmgd-$batch-a" --method dmgd --class-batch "$batch")
  read -r dc2 dw2 < <(run "dit-$batch-b" --method dit --class-batch "$batch" --seed 1)
  read -r gc2 gw2 < <(run "dmgd-$batch-b" --method dmgd --class-batch "$batch" --seed 1)
  "${PYTHON:-python3}" - "$batch" "$dc1" "$dc2" "$gc1" "$gc2" "$dw1" "$dw2" "$gw1" "$gw2" <<'PY'
import sys
b = sys.argv[1]
dc1, dc2, gc1, gc2, dw1, dw2, gw1, gw2 = map(float, sys.argv[2:])
dc, gc, dw, gw = (dc1 + dc2) / 2, (gc1 + gc2) / 2, (dw1 + dw2) / 2, (gw1 + gw2) / 2
print(f"| {b} | {dc:.3f} ({dc1:.3f}, {dc2:.3f}) | {gc:.3f} ({gc1:.3f}, {gc2:.3f}) | {gc / dc:.3f} | {dw:.3f} | {gw:.3f} |")
PY
done
