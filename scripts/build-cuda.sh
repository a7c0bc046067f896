#!/usr/bin/env bash
# Build dmgd with `--features cuda` on a machine with no GPU, using the PyPI CUDA 13.0 toolchain
# from scripts/cuda-toolchain.sh (built on first use), in its own target dir (target/cuda) so
# the CPU build's cache is left alone. See scripts/README.md.
#
#   scripts/build-cuda.sh                      # cargo build --release -p dmgd-cli --features cuda
#   scripts/build-cuda.sh check --release -p dmgd-cli --features cuda    # any cargo command
#   scripts/build-cuda.sh --strip-only         # only (re)make target/cuda/dmgd-cuda
#
# After a `build`, the binary is stripped into target/cuda/dmgd-cuda; the script fails if that
# is larger than 64 MiB (the most a device run can carry).
# Environment: CUDA_COMPUTE_CAP (default 80: runs on A100 and newer), CUDA_TOOLCHAIN_DIR
# (default <repo>/.cuda), CUDA_TARGET_DIR (default <repo>/target/cuda), RUSTFLAGS (kept, the
# toolchain's -L flags are appended), CARGO (default cargo).
set -euo pipefail

die() { echo "build-cuda: ERROR: $*" >&2; exit 1; }
log() { echo "build-cuda: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLCHAIN_DIR=${CUDA_TOOLCHAIN_DIR:-$ROOT/.cuda}
TARGET_DIR=${CUDA_TARGET_DIR:-$ROOT/target/cuda}
CARGO=${CARGO:-cargo}
LIMIT=$((64 * 1024 * 1024))
BIN_NAME=dmgd
OUT_BIN=$TARGET_DIR/dmgd-cuda

STRIP_ONLY=0
if [ "${1:-}" = "--strip-only" ]; then STRIP_ONLY=1; shift; fi
DEFAULT_ARGS=(build --release -p dmgd-cli --features cuda)
if [ $# -gt 0 ]; then ARGS=("$@"); DEFAULTED=0; else ARGS=("${DEFAULT_ARGS[@]}"); DEFAULTED=1; fi

# ---- toolchain (idempotent: a second call only checks its marker) --------------------------------
"$ROOT/scripts/cuda-toolchain.sh" "$TOOLCHAIN_DIR" >/dev/null \
  || die "scripts/cuda-toolchain.sh $TOOLCHAIN_DIR failed (see above)"
[ -f "$TOOLCHAIN_DIR/env.sh" ] || die "no $TOOLCHAIN_DIR/env.sh after cuda-toolchain.sh"
# shellcheck disable=SC1091
source "$TOOLCHAIN_DIR/env.sh"      # CUDA_HOME, PATH, CUDARC_CUDA_VERSION, CUDA_COMPUTE_CAP
case $CUDA_HOME in *" "*) die "CUDA_HOME has a space ($CUDA_HOME): RUSTFLAGS cannot carry it" ;; esac
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}
export CUDARC_CUDA_VERSION=13000
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$CUDA_TOOLCHAIN_RUSTFLAGS"
export CARGO_TARGET_DIR=$TARGET_DIR
command -v nvcc >/dev/null || die "nvcc not on PATH after sourcing $TOOLCHAIN_DIR/env.sh"

# ---- cargo -----------------------------------------------------------------------------------------
if [ "$STRIP_ONLY" = 0 ]; then
  log "CUDA_HOME=$CUDA_HOME ($(nvcc --version | grep -o 'release [0-9.]*, V[0-9.]*'))"
  log "CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
  log "RUSTFLAGS=$RUSTFLAGS"
  log "running: $CARGO ${ARGS[*]}"
  start=$(date +%s)
  (cd "$ROOT" && nice -n 19 "$CARGO" "${ARGS[@]}") || die "'$CARGO ${ARGS[*]}' failed after $(( $(date +%s) - start )) s"
  el=$(( $(date +%s) - start ))
  log "cargo ${ARGS[0]} done in $((el / 60)) min $((el % 60)) s"
fi

# ---- strip the binary (only after a build) ------------------------------------------------------
if [ "$STRIP_ONLY" = 0 ] && [ "${ARGS[0]}" != build ] && [ "${ARGS[0]}" != b ]; then
  exit 0
fi
# Where cargo put it: <target-dir>[/<triple>]/<profile dir>/dmgd
profile=debug; triple=
set -- "${ARGS[@]:1}"
while [ $# -gt 0 ]; do
  case $1 in
    -r|--release) profile=release ;;
    --profile) shift; profile=${1:-dev} ;;
    --profile=*) profile=${1#--profile=} ;;
    --target) shift; triple=${1:-} ;;
    --target=*) triple=${1#--target=} ;;
  esac
  shift
done
case $profile in dev|test) profile=debug ;; bench) profile=release ;; esac
BIN=$TARGET_DIR/${triple:+$triple/}$profile/$BIN_NAME
if [ ! -f "$BIN" ]; then
  [ "$DEFAULTED" = 1 ] && die "no binary at $BIN"
  log "no $BIN_NAME binary at $BIN (not built by this command?); nothing to strip"
  exit 0
fi
command -v strip >/dev/null || die "strip not found (binutils)"
strip --strip-all -o "$OUT_BIN.tmp" "$BIN" || die "strip $BIN failed"
mv -f "$OUT_BIN.tmp" "$OUT_BIN"
size=$(stat -c %s "$OUT_BIN")
full=$(stat -c %s "$BIN")
gz=$(nice -n 19 gzip -1 -c "$OUT_BIN" | wc -c)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
log "$BIN: $(mib "$full") unstripped"
log "$OUT_BIN: $size bytes ($(mib "$size")), gzip -1: $(mib "$gz"); limit $(mib "$LIMIT")"
if command -v readelf >/dev/null; then
  log "needs at run time: $(readelf -d "$OUT_BIN" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
fi
[ "$size" -le "$LIMIT" ] || die "$OUT_BIN is $(mib "$size"), over the 64 MiB carry limit (compress it, e.g. gzip, and unpack on the GPU machine)"
echo "$OUT_BIN"
