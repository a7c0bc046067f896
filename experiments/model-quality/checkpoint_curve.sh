#!/usr/bin/env bash
# The checkpoint curve of a pretraining run (issue 25): for each EMA snapshot that
# `dmgd pretrain --snapshot-every` kept, N samples (N/10 per class, seed 0, the default CFG 4
# and 50 steps) judged against the images the run held out of training
# (`dmgd quality --holdout-per-class`), never the test split. A run that started from another
# model (`pretrain --init`) gets that model as step 0. One JSON per checkpoint, in RESULTS
# (committed); a checkpoint already there is skipped.
#
#   experiments/model-quality/checkpoint_curve.sh RUN_DIR
#   N=1000 HOLDOUT=500 CFG=4 DMGD=target/release/dmgd NET=<classifier> RESULTS=<dir> (defaults)
#   STEPS="10000 20000": only these checkpoints
#
# Then: experiments/model-quality/curve_table.py RESULTS prints the curve.
set -euo pipefail
cd "$(dirname "$0")/../.."
run=${1:?usage: checkpoint_curve.sh RUN_DIR}
DMGD=${DMGD:-target/release/dmgd}
N=${N:-1000}
HOLDOUT=${HOLDOUT:-500}
NET=${NET:-models/fashion-mnist-teacher/convnet3.safetensors}
CFG=${CFG:-4}
tag=$(basename "$run")-n$N
[ "$CFG" = 4 ] || tag=$tag-cfg$CFG
RESULTS=${RESULTS:-experiments/model-quality/results/$tag}
mkdir -p "$RESULTS"
init=$(sed -n 's/^ *"path": "\(.*\)",\{0,1\}$/\1/p' "$run/train-state.json")
for snapshot in ${init:+"$init"} "$run"/snapshots/ema-step*.safetensors; do
  step=$(basename "$snapshot" .safetensors)
  step=${step#ema-step}
  [ "$snapshot" = "$init" ] && step=0000000
  if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $((10#$step)) "* ]]; then continue; fi
  result="$RESULTS/step$step.json"
  [ -f "$result" ] && continue
  samples="runs/curve-$tag-step$step"
  [ "$CFG" = 4 ] && samples="runs/curve-$(basename "$run")-step$step-n$N"  # the first runs' name
  start=$(date +%s)
  "$DMGD" sample --dit "$snapshot" --ipc $((N / 10)) --seed 0 --cfg-scale "$CFG" \
    --out "$samples" --resume
  echo "step $step: $N samples in $(( $(date +%s) - start )) s"
  "$DMGD" quality --images "$samples" --holdout-per-class "$HOLDOUT" --classifier "$NET" \
    --out "$result"
done
