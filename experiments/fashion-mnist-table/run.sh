#!/usr/bin/env bash
# The Fashion-MNIST distillation table (issue 5): every method at IPC 1, 10 and 50, several
# generation seeds, ConvNet-3 students under the dc protocol with and without DSA augmentation.
#
#   experiments/fashion-mnist-table/run.sh [OUT_DIR]
#   (default runs/table; resumable: finished cells are kept)
#
# Each finished cell's eval.json, eval.md and manifest.json, and each set's manifest.json, are
# copied into RESULTS (default experiments/fashion-mnist-table/results/table, committed): the
# table outlives the machine, and a cell found there is not run again (nor are its sets
# distilled). A cell cut off half-way keeps its finished networks: keep.sh copies them into
# RESULTS, and the next run.sh, on any machine, trains only the missing ones (dmgd eval --resume).
#
# Environment knobs (defaults = the full table, many hours on 2 CPU cores):
#   IPCS="1 10 50"  SEEDS="0 1 2"  REPEATS=2  EPOCHS=300  DSA_EPOCHS=1000  AUGMENTS="none dsa"
#   METHODS="random dit mgd3 dmgd-no-distribution dmgd-no-semantic dmgd dmgd-tuned"
#   (dmgd-tuned: DMGD with configs/fashion-mnist-tuned.toml, the study's pick for the shipped
#   model; the old table's row used configs/fashion-mnist-tuned-2026-11.toml)
#   TEST_EVERY=<epochs> (test once, after the last epoch: the protocol reports final accuracy)
#   LABELS=soft TEACHER=<file>: soft-label cells (eval --labels soft, the rded protocol), named
#   <method>-ipc<ipc>-<augment>-soft; use AUGMENTS="rded none" with them
#   DMGD=<binary> (default: build this checkout)
#   DIT=<model folder or file>: another generator than the shipped one (with its own OUT_DIR and
#   RESULTS: a cell found in RESULTS is not run again); TUNED=<config>: dmgd-tuned's settings
#   (default configs/fashion-mnist-tuned.toml)
# Two chains with disjoint METHODS may share OUT_DIR (cells are separate directories).
# Then: summarize.py (reads RESULTS) and figure.py beside this file, with ${PYTHON:-python3}.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/table}
IPCS=${IPCS:-"1 10 50"}
SEEDS=${SEEDS:-"0 1 2"}
REPEATS=${REPEATS:-2}
EPOCHS=${EPOCHS:-300}
DSA_EPOCHS=${DSA_EPOCHS:-1000}
AUGMENTS=${AUGMENTS:-"none dsa"}
METHODS=${METHODS:-"random dit mgd3 dmgd-no-distribution dmgd-no-semantic dmgd dmgd-tuned"}
if [ -z "${DMGD:-}" ]; then
  cargo build --release -q -p dmgd-cli
fi
bin=${DMGD:-${CARGO_TARGET_DIR:-target}/release/dmgd}
RESULTS=${RESULTS:-experiments/fashion-mnist-table/results/table}
mkdir -p "$out" "$RESULTS"
LABELS=${LABELS:-hard}
if [ "$LABELS" = soft ]; then
  label_flags=(--labels soft --teacher "${TEACHER:?TEACHER=<file> is needed with LABELS=soft}")
  suffix=-soft
else
  label_flags=(--protocol dc)
  suffix=
fi

method_flags() {
  case $1 in
    dmgd-no-distribution) echo "--method dmgd --no-distribution" ;;
    dmgd-no-semantic) echo "--method dmgd --no-semantic" ;;
    dmgd-tuned) echo "--method dmgd --config ${TUNED:-configs/fashion-mnist-tuned.toml}" ;;
    *) echo "--method $1" ;;
  esac
}

# Copies the small files of a finished run directory $1 into $RESULTS/$2. A set's manifest
# already there stays: it describes the distillation that the kept cells trained on (a set
# distilled again elsewhere has the same fingerprint, which summarize.py checks).
save() {
  mkdir -p "$RESULTS/$2"
  for f in eval.json eval.md manifest.json; do
    if [ -f "$1/$f" ]; then cp "$1/$f" "$RESULTS/$2/$f"; fi
  done
  rm -rf "${RESULTS:?}/$2/networks"  # kept by keep.sh while the cell was unfinished
}
save_set() {
  if [ ! -f "$RESULTS/$2/manifest.json" ]; then save "$1" "$2"; fi
}

for ipc in $IPCS; do
  for method in $METHODS; do
    missing=0
    for augment in $AUGMENTS; do
      [ -f "$RESULTS/eval/$method-ipc$ipc-$augment$suffix/eval.json" ] || missing=1
    done
    [ "$missing" = 0 ] && continue
    sets=()
    for seed in $SEEDS; do
      set_dir="$out/sets/$method-ipc$ipc-seed$seed"
      if [ ! -f "$set_dir/manifest.json" ]; then
        # shellcheck disable=SC2046
        $bin distill $(method_flags "$method") ${DIT:+--dit "$DIT"} --ipc "$ipc" --seed "$seed" \
          --out "$set_dir" --resume
      fi
      sets+=(--train "$set_dir")
      save_set "$set_dir" "sets/$method-ipc$ipc-seed$seed"
    done
    for augment in $AUGMENTS; do
      epochs=$EPOCHS
      [ "$augment" = dsa ] && epochs=$DSA_EPOCHS
      name="$method-ipc$ipc-$augment$suffix"
      cell="$out/eval/$name"
      [ -f "$RESULTS/eval/$name/eval.json" ] && continue
      if [ ! -f "$cell/eval.json" ]; then
        # Networks kept by keep.sh, unless this machine already has them.
        for kept in "$RESULTS/eval/$name/networks/"*.json; do
          [ -f "$kept" ] || continue
          mkdir -p "$cell/networks"
          [ -f "$cell/networks/$(basename "$kept")" ] || cp "$kept" "$cell/networks/"
        done
        $bin eval "${sets[@]}" --net convnet3 "${label_flags[@]}" --augment "$augment" \
          --epochs "$epochs" --test-every "${TEST_EVERY:-$epochs}" --repeats "$REPEATS" \
          --out "$cell" --resume
      fi
      save "$cell" "eval/$name"
    done
  done
done
echo "done: ${PYTHON:-python3} experiments/fashion-mnist-table/summarize.py $RESULTS"
