#!/usr/bin/env bash
# The full Fashion-MNIST training split under the `dc` protocol for 5 epochs (ConvNet-3, seed 0,
# tested once at the end on the 10,000 test images): trained by `dmgd select --method herding`
# as its embedding network (its accuracy goes into the manifest), then reused from the cache by
# a k-center selection. The cache starts empty so the training always runs.
# The same number comes from
#   dmgd eval --train fashion-mnist --epochs 5 --test-every 5 --repeats 1 --seed 0
# (identical TrainConfig and seed, so identical training).
set -euo pipefail
DMGD=${DMGD:-target/release/dmgd}
IPC=${IPC:-10}
rm -rf runs/embedding-cache
for method in herding kcenter; do
  start=$(date +%s)
  "$DMGD" select --method $method --ipc "$IPC" --cache-dir runs/embedding-cache \
    --out "runs/$method-ipc$IPC" --overwrite
  echo "$method IPC $IPC: $(( $(date +%s) - start )) s wall"
done
