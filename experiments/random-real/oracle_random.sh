#!/usr/bin/env bash
# The independent PyTorch implementation of the `dc` protocol (oracle/dc_convnet.py) on
# the same random real sets as random_real.sh: one network (seed 0) per set, 300 epochs, tested
# after the last epoch. One JSON line per set goes to runs/oracle-random.jsonl.
#
#   experiments/random-real/oracle_random.sh 1 10
#   PYTHON=path/to/venv/bin/python experiments/random-real/oracle_random.sh 50
#
# PYTHON (default python3) needs the packages of oracle/requirements.txt.
set -euo pipefail
PYTHON=${PYTHON:-python3}
DMGD=${DMGD:-target/release/dmgd}
EPOCHS=${EPOCHS:-300}
SEEDS=${SEEDS:-"0 1 2 3 4"}
export OMP_WAIT_POLICY=PASSIVE
for ipc in "${@:-1 10 50}"; do
  for seed in $SEEDS; do
    dir=runs/random-ipc$ipc-s$seed
    [ -f "$dir/manifest.json" ] || "$DMGD" select --method random --ipc "$ipc" --seed "$seed" --out "$dir"
    result=$("$PYTHON" oracle/dc_convnet.py --manifest "$dir/manifest.json" --epochs "$EPOCHS" --repeats 1 --seed 0)
    echo "{\"set\": \"$dir\", \"ipc\": $ipc, \"set_seed\": $seed, \"oracle\": $result}" | tee -a runs/oracle-random.jsonl
  done
done
