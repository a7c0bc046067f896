#!/usr/bin/env bash
# Random real subsets of Fashion-MNIST under the `dc` protocol (ConvNet-3, no augmentation):
# 5 sets (seeds 0..4) x 1 fresh network each, 300 epochs, for each IPC given (default 1 10 50);
# tested once, after the last epoch (the DC protocol's number; testing 10,000 images is the
# dominant CPU cost at IPC 1 and 10).
# Writes runs/random-ipc<N>-s<seed>/ (ImageFolder + manifest.json) and runs/eval-random-ipc<N>/.
#
#   experiments/random-real/random_real.sh 1 10 50
#   DMGD=path/to/dmgd EPOCHS=300 experiments/random-real/random_real.sh 10
#   PER_SET=1 experiments/random-real/random_real.sh 50     # one eval per set (partial results survive)
set -euo pipefail
DMGD=${DMGD:-target/release/dmgd}
EPOCHS=${EPOCHS:-300}
SEEDS=${SEEDS:-"0 1 2 3 4"}
for ipc in "${@:-1 10 50}"; do
  sets=()
  for seed in $SEEDS; do
    dir=runs/random-ipc$ipc-s$seed
    "$DMGD" select --method random --ipc "$ipc" --seed "$seed" --out "$dir" --overwrite
    sets+=(--train "$dir")
  done
  common=(--net convnet3 --protocol dc --augment none --epochs "$EPOCHS" --test-every "$EPOCHS"
    --repeats 1 --overwrite)
  start=$(date +%s)
  if [ -z "${PER_SET:-}" ]; then
    "$DMGD" eval "${sets[@]}" "${common[@]}" --seed 0 --out "runs/eval-random-ipc$ipc"
  else
    # One eval per set, so each finished set leaves its eval.json; set <seed> gets network
    # seed 1000 seed, what the single eval above gives it when SEEDS is 0..4.
    for seed in $SEEDS; do
      s0=$(date +%s)
      "$DMGD" eval --train "runs/random-ipc$ipc-s$seed" "${common[@]}" --seed $((1000 * seed)) \
        --out "runs/eval-random-ipc$ipc-s$seed"
      echo "IPC $ipc set $seed: $(( $(date +%s) - s0 )) s wall"
    done
  fi
  echo "IPC $ipc: $(( $(date +%s) - start )) s wall"
done
