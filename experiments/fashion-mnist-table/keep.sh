#!/usr/bin/env bash
# Keeps what the cells of run.sh have finished when they are cut off (a session's end, a
# preempted job), so that no finished student network has to be trained again on any machine:
# an unfinished cell's networks/*.json and manifest.json go into RESULTS/eval/<cell>/, where
# run.sh puts them back before `dmgd eval --resume`; a finished cell is saved as run.sh would.
#
#   experiments/fashion-mnist-table/keep.sh [OUT_DIR]     (default runs/table; RESULTS as in run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/table}
RESULTS=${RESULTS:-experiments/fashion-mnist-table/results/table}
for cell in "$out"/eval/*/; do
  cell=${cell%/}
  name=$(basename "$cell")
  kept="$RESULTS/eval/$name"
  [ -f "$kept/eval.json" ] && continue
  if [ -f "$cell/eval.json" ]; then
    mkdir -p "$kept"
    cp "$cell/eval.json" "$cell/eval.md" "$cell/manifest.json" "$kept/"
    rm -rf "$kept/networks"
    echo "$name: finished, saved"
  elif compgen -G "$cell/networks/*.json" >/dev/null; then
    mkdir -p "$kept/networks"
    cp "$cell"/networks/*.json "$kept/networks/"
    cp "$cell/manifest.json" "$kept/"
    echo "$name: $(ls "$kept"/networks/*.json | wc -l) finished networks kept"
  fi
done
