#!/usr/bin/env bash
# Compile check of the `cuda` feature on a machine without a GPU (what CI runs after `cargo test`).
#
# The CUDA compiler that cudarc's and candle's build scripts need comes from PyPI wheels
# (nvidia-cuda-nvcc, nvidia-cuda-runtime, nvidia-cuda-crt, nvidia-cuda-cccl; about 370 MB),
# installed into a virtual environment in `.cuda-toolchain/` at the repository root (ignored by
# git, reused when present). Then:
#
#     cargo check --features cuda --all-targets
#
# with `nvcc` on PATH, CUDA_ROOT/CUDA_PATH at the wheels' `nvidia/cu13`, CUDA_COMPUTE_CAP=90 and
# CUDARC_CUDA_VERSION=13000 (cudarc 0.19 rejects the wheels' 13.x minor version string).
# Nothing runs on a GPU; linking is not checked (`cargo check` does not link).
#
# Environment:
#   CUDA_TOOLCHAIN_DIR  where the virtual environment lives (default: .cuda-toolchain)
#   PYTHON              the Python used to create it (default: python3; needs the venv module)
#   CARGO_TARGET_DIR    honoured as usual; the default is target/cuda-check, so that the CPU
#                       build in target/ is not invalidated by the feature change
#
# Exits non-zero with a one-line reason when Python, PyPI (pip gives up after a bounded number
# of retries and a timeout per connection) or the check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "cuda-check: $*" >&2; exit 1; }

toolchain_dir="${CUDA_TOOLCHAIN_DIR:-.cuda-toolchain}"
python="${PYTHON:-python3}"
packages=(nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-crt nvidia-cuda-cccl)
start=$(date +%s)

find_cuda_root() {
    # The wheels put the toolkit under site-packages/nvidia/cu<major>/.
    local nvcc
    nvcc=$(find "$toolchain_dir" -path '*/site-packages/nvidia/cu*/bin/nvcc' -type f 2>/dev/null | head -n 1)
    [ -n "$nvcc" ] && dirname "$(dirname "$nvcc")"
}

cuda_root=$(find_cuda_root || true)
if [ -z "$cuda_root" ]; then
    command -v "$python" >/dev/null 2>&1 || die "no '$python' on PATH (needed to install nvcc from PyPI; set PYTHON)"
    echo "cuda-check: installing ${packages[*]} into $toolchain_dir (about 370 MB)"
    rm -rf "$toolchain_dir"
    "$python" -m venv "$toolchain_dir" || die "could not create a virtual environment with '$python -m venv'"
    # Bounded: 3 retries, 30 s per connection; `timeout` stops a stalled install after 15 min.
    if ! timeout 900 "$toolchain_dir/bin/pip" install --disable-pip-version-check --no-input \
            --retries 3 --timeout 30 "${packages[@]}"; then
        rm -rf "$toolchain_dir"
        die "could not install ${packages[*]} from PyPI (no network, or the packages are unavailable); the CUDA check did not run"
    fi
    cuda_root=$(find_cuda_root || true)
    [ -n "$cuda_root" ] || die "the wheels installed but no nvcc was found under $toolchain_dir/*/site-packages/nvidia/cu*/bin"
else
    echo "cuda-check: reusing the toolchain in $toolchain_dir"
fi
cuda_root=$(cd "$cuda_root" && pwd)
installed=$(date +%s)

export PATH="$cuda_root/bin:$PATH"
export CUDA_ROOT="$cuda_root" CUDA_PATH="$cuda_root"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda-check}"
echo "cuda-check: $(nvcc --version | tail -n 2 | head -n 1)"
echo "cuda-check: cargo check --features cuda --all-targets (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo check --features cuda --all-targets || die "cargo check --features cuda --all-targets failed"
done_at=$(date +%s)
echo "cuda-check: passed (toolchain $((installed - start)) s, cargo check $((done_at - installed)) s)"
