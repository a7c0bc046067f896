#!/usr/bin/env bash
# DD-Ranking's scores of every (method, IPC) whose soft-label cells have finished: HLR, IOR and
# LRS from the set's hard cell (`<m>-ipc<N>-none`), its soft cell (`<m>-ipc<N>-rded-soft`) and
# random real's soft cell, plus ARS where both no-augmentation soft cells (`...-none-soft`)
# exist; the full-data input is the shipped teacher's evaluation (models/fashion-mnist-teacher).
# `dmgd score` on the committed cells; its JSON and printed table go to SCORES/<m>-ipc<N>.*
#
#   experiments/fashion-mnist-table/scores.sh
#   DMGD=<binary> (default target/release/dmgd)  RESULTS=<table results>  SCORES=<dir>
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${DMGD:-${CARGO_TARGET_DIR:-target}/release/dmgd}
R=${RESULTS:-experiments/fashion-mnist-table/results/table}/eval
S=${SCORES:-experiments/fashion-mnist-table/results/scores}
mkdir -p "$S"
done_cell() { [ -f "$1/eval.json" ]; }
for soft in "$R"/*-rded-soft; do
  cell=$(basename "$soft")
  name=${cell%-rded-soft}
  method=${name%-ipc*}
  ipc=${name##*-ipc}
  random=$R/random-ipc$ipc-rded-soft
  done_cell "$soft" && done_cell "$random" && done_cell "$R/$name-none" || continue
  noaug=()
  if done_cell "$R/$name-none-soft" && done_cell "$R/random-ipc$ipc-none-soft"; then
    noaug=(--set-noaug "$R/$name-none-soft" --random-noaug "$R/random-ipc$ipc-none-soft")
  fi
  echo "== $method, IPC $ipc"
  "$bin" score --full models/fashion-mnist-teacher --set-hard "$R/$name-none" \
    --set-soft "$soft" --random-soft "$random" "${noaug[@]}" --out "$S/$name.json" |
    tee "$S/$name.md"
done
