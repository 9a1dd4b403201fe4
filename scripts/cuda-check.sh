#!/usr/bin/env bash
# Compile check of the `cuda` feature on a machine without a GPU; CI runs it after `cargo test`.
#
# Installs nvcc from PyPI (nvidia-cuda-nvcc, nvidia-cuda-runtime, nvidia-cuda-crt,
# nvidia-cuda-cccl; about 370 MB) into .cuda-toolchain/ (ignored by git, reused when present;
# see scripts/cuda-toolchain.sh), then runs
#
#     cargo check --features cuda --all-targets
#
# (library, binaries, tests, benches, examples). Nothing runs on a GPU and nothing is linked:
# `cargo check` needs nvcc for candle's kernels but not the CUDA libraries.
#
# Environment: CUDA_TOOLCHAIN_DIR, PYTHON (see scripts/cuda-toolchain.sh); CARGO_TARGET_DIR as
# usual (the CUDA-featured crates sit beside the CPU build's, which stays valid; the build
# scripts and proc macros are shared).
# Exits non-zero with a one-line reason when Python, PyPI or the check fails; never waits on the
# network for more than 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cuda-toolchain.sh

start=$(date +%s)
cuda_toolchain "${CUDA_BASE_PACKAGES[@]}" \
    || { echo "cuda-check: FAILED: no CUDA toolchain, the check did not run" >&2; exit 1; }
installed=$(date +%s)
echo "cuda-check: $(nvcc --version | grep -i release)"
echo "cuda-check: cargo check --features cuda --all-targets (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION)"
if ! cargo check --features cuda --all-targets; then
    echo "cuda-check: FAILED: cargo check --features cuda --all-targets" >&2
    exit 1
fi
done_at=$(date +%s)
echo "cuda-check: passed (toolchain $((installed - start)) s, cargo check $((done_at - installed)) s)"
