#!/usr/bin/env bash
# The hyper-parameter study of issue 5: DMGD at IPC 10 with one knob moved at a time from the
# reference defaults (rho 0.5, K 10, beta_n 0.06, CFG 4.0, OT window [30, 45]; beta_n 0 is
# refused: the exploration phase's label would be all zeros), evaluated
# like the main table (ConvNet-3, dc protocol, no augmentation unless AUGMENT=dsa, final-epoch accuracy). The
# defaults' row is the main table's `dmgd` IPC-10 cell (run.sh beside this file).
#
#   experiments/fashion-mnist-table/hparams.sh [OUT_DIR]      (default runs/hparams; resumable)
#
# Environment knobs: SEEDS="0 1" REPEATS=1 EPOCHS=300 DMGD=<binary> STUDY="<name>=<flags>;..."
# AUGMENT=none|dsa (dsa: 1000 epochs unless EPOCHS is set; cells are named <name>-dsa)
# TEST=fashion-mnist|validation|holdout|<ImageFolder>: where the students are tested. `validation` is
# 1,000 random real training images per class (`dmgd select --seed 1000`, made in OUT_DIR),
# so knobs can be picked without the test split; its cells go to results/hparams-validation.
# `holdout` keeps the validation images out of everything else: the sets are distilled from
# `fashion-mnist-fit$HOLDOUT` (the training split without its last HOLDOUT images per class,
# default 500: what `dmgd pretrain --holdout-per-class 500` trained on) and the students
# tested on `fashion-mnist-val$HOLDOUT` (those images); the defaults are distilled too (STUDY
# starts with "defaults="), into OUT_DIR runs/hparams-holdout$HOLDOUT, results in
# results/hparams-holdout$HOLDOUT (or RESULTS). DIT=<model>: another generator than the shipped one.
# A setting with no flags ("defaults=") is the reference defaults, distilled by this script.
# (flags that start with --method replace `--method dmgd`, e.g. "dit-cfg2=--method dit --cfg-scale 2")
# About 5 min of one core per (setting, seed) at 1 thread: distill ~1 min, one network ~3 min.
# Finished cells are copied into RESULTS (default experiments/fashion-mnist-table/results/hparams,
# committed) and are not run again. Then: ${PYTHON:-python3} summarize_hparams.py beside this file.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/hparams}
SEEDS=${SEEDS:-"0 1"}
REPEATS=${REPEATS:-1}
AUGMENT=${AUGMENT:-none}
if [ "$AUGMENT" = dsa ]; then EPOCHS=${EPOCHS:-1000}; else EPOCHS=${EPOCHS:-300}; fi
STUDY=${STUDY:-"rho0.05=--rho 0.05;rho0.2=--rho 0.2;rho2=--rho 2;\
K5=--support-points 5;K20=--support-points 20;K50=--support-points 50;\
betan0.02=--beta-n 0.02;betan0.2=--beta-n 0.2;\
cfg1=--cfg-scale 1;cfg2=--cfg-scale 2;cfg6=--cfg-scale 6;\
window20-45=--ot-window 20 45;window35-45=--ot-window 35 45;window30-49=--ot-window 30 49"}
if [ -z "${DMGD:-}" ]; then
  cargo build --release -q -p dmgd-cli
fi
bin=${DMGD:-${CARGO_TARGET_DIR:-target}/release/dmgd}
TEST=${TEST:-fashion-mnist}
data_flags=()
[ -n "${DIT:-}" ] && data_flags+=(--dit "$DIT")
if [ "$TEST" = holdout ]; then
  HOLDOUT=${HOLDOUT:-500}
  data_flags+=(--data "fashion-mnist-fit$HOLDOUT")
  TEST=fashion-mnist-val$HOLDOUT
  STUDY="defaults=;$STUDY"
  [ -n "${1:-}" ] || out=runs/hparams-holdout$HOLDOUT
  RESULTS=${RESULTS:-experiments/fashion-mnist-table/results/hparams-holdout$HOLDOUT}
fi
if [ "$TEST" = validation ]; then
  RESULTS=${RESULTS:-experiments/fashion-mnist-table/results/hparams-validation}
  mkdir -p "$out"
  [ -f "$out/validation/manifest.json" ] ||
    $bin select --method random --ipc 1000 --seed 1000 --out "$out/validation" --overwrite
  TEST=$out/validation
fi
RESULTS=${RESULTS:-experiments/fashion-mnist-table/results/hparams}
mkdir -p "$out" "$RESULTS"

IFS=';' read -ra settings <<< "$STUDY"
for setting in "${settings[@]}"; do
  name=${setting%%=*}
  read -ra flags <<< "${setting#*=}"
  cell_name=$name
  [ "$AUGMENT" = none ] || cell_name=$name-$AUGMENT
  [ -f "$RESULTS/eval/$cell_name/eval.json" ] && continue
  sets=()
  for seed in $SEEDS; do
    set_dir="$out/sets/$name-seed$seed"
    if [ ! -f "$set_dir/manifest.json" ]; then
      method=(--method dmgd) # a setting may name another method first: "dit-cfg2=--method dit ..."
      [ "${flags[0]:-}" = --method ] && method=()
      $bin distill "${method[@]}" "${data_flags[@]}" --ipc 10 --seed "$seed" "${flags[@]}" \
        --out "$set_dir" --resume
    fi
    sets+=(--train "$set_dir")
  done
  cell="$out/eval/$cell_name"
  if [ ! -f "$cell/eval.json" ]; then
    $bin eval "${sets[@]}" --test "$TEST" --net convnet3 --protocol dc --augment "$AUGMENT" --epochs "$EPOCHS" \
      --test-every "$EPOCHS" --repeats "$REPEATS" --out "$cell" --resume
  fi
  mkdir -p "$RESULTS/eval/$cell_name"
  cp "$cell"/eval.json "$cell"/eval.md "$cell"/manifest.json "$RESULTS/eval/$cell_name/"
done
echo "done: ${PYTHON:-python3} experiments/fashion-mnist-table/summarize_hparams.py"
