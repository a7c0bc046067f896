#!/usr/bin/env bash
# The GPU check, in one run on a GPU machine with PyTorch (CUDA 13) and no Rust toolchain:
# `dmgd device-check` (CUDA against CPU, then timings) and benches/gpu/torch_timings.py on
# the same GPU, assembled into $OUT/BENCH-gpu.md (copy it to docs/ with the date and commit).
#
# Build the binary here first (scripts/build-cuda.sh), then carry it:
#     scripts/gpu-check.sh [DMGD_BINARY]      (default target/cuda/dmgd-cuda, or its .gz)
# Environment: OUT (default runs/gpu-check), REPEATS (5), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpu-check}
bin=${1:-target/cuda/dmgd-cuda}
python=${PYTHON:-python3}
mkdir -p "$out"
if [ ! -x "$bin" ] && [ -f "$bin.gz" ]; then
  gunzip -c "$bin.gz" > "$out/dmgd" && chmod +x "$out/dmgd" && bin=$out/dmgd
fi
# cuBLAS, cuRAND and the runtime of CUDA 13 come with PyTorch's wheels.
lib=$("$python" -c 'import os, nvidia.cu13 as m; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="${lib:+$lib:}${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" || true
"$bin" device-check --device cuda:0 --repeats "${REPEATS:-5}" --out "$out/dmgd.md" 2> "$out/dmgd.log" || echo "dmgd device-check failed: $out/dmgd.log"
"$python" benches/gpu/torch_timings.py "${REPEATS:-5}" > "$out/torch.md" 2> "$out/torch.log" || echo "torch_timings.py failed: $out/torch.log"
{
  echo "# GPU check ($(date -u +%Y-%m-%d), $(cat "$out/gpu.txt" 2>/dev/null))"
  echo
  echo "Made by scripts/gpu-check.sh with the dmgd binary $("$bin" --version 2>/dev/null) (sha256 $(sha256sum "$bin" | cut -c1-16))."
  echo
  cat "$out/dmgd.md" 2>/dev/null || { echo "dmgd device-check failed:"; tail -20 "$out/dmgd.log"; }
  echo
  cat "$out/torch.md" 2>/dev/null || { echo "torch_timings.py failed:"; tail -20 "$out/torch.log"; }
} > "$out/BENCH-gpu.md"
echo "wrote $out/BENCH-gpu.md"
