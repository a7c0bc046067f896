#!/usr/bin/env bash
# Quality of the shipped Fashion-MNIST DiT (issue 3), judged by a ConvNet-3 trained on the full
# real training split (models/fashion-mnist-teacher: `dmgd eval --save-nets`, 10 epochs of dc,
# seed 0):
#  - agreement: the share of 1,000 samples (100 per class, default CFG 4, 50 steps) that it
#    classifies as the class they were conditioned on;
#  - Fréchet distance in its penultimate features (2048-d) between N generated images
#    (N/10 per class; default 10,000) and the 10,000 real test images, next to the same distance
#    between the 60,000 real training images and the test images.
#
#   experiments/model-quality/model_quality.sh          # MODEL defaults to the shipped one
#   N=2000 MODEL=runs/dit-ti4-cont experiments/model-quality/model_quality.sh
#   CFG=1.5: another guidance scale for both sample sets (default 4, the sampler's)
#   TAG=<name>: the runs/quality-<name>* folders (default: the model folder's name). A cut-off run
#   continues where it stopped (`sample --resume`); one of another model or CFG in the same
#   folders is refused, so give a new model a new TAG. The scores: RESULTS/quality-<TAG>.json
#   (RESULTS defaults to experiments/model-quality/results).
set -euo pipefail
DMGD=${DMGD:-target/release/dmgd}
MODEL=${MODEL:-models/fashion-mnist-dit}
N=${N:-10000}
NET=${NET:-models/fashion-mnist-teacher/convnet3.safetensors}  # = runs/eval-full-e10/net-set0-run0
CFG=${CFG:-4}
RESULTS=${RESULTS:-experiments/model-quality/results}  # committed
TAG=${TAG:-$(basename "$MODEL")}
[ "$CFG" = 4 ] || TAG=$TAG-cfg$CFG
start=$(date +%s)
"$DMGD" sample --dit "$MODEL" --ipc 100 --seed 0 --cfg-scale "$CFG" --out "runs/quality-$TAG-ipc100" --resume
echo "1,000 samples: $(( $(date +%s) - start )) s wall"
sets=(--images "runs/quality-$TAG-ipc100")
if [ "$N" -gt 1000 ]; then
  start=$(date +%s)
  "$DMGD" sample --dit "$MODEL" --ipc $((N / 10)) --seed 1 --cfg-scale "$CFG" --out "runs/quality-$TAG-n$N" --resume
  echo "$N samples: $(( $(date +%s) - start )) s wall"
  sets+=(--images "runs/quality-$TAG-n$N")
fi
"$DMGD" quality "${sets[@]}" --images fashion-mnist --classifier "$NET" \
  --out "$RESULTS/quality-$TAG.json"
