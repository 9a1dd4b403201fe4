# Sourced by scripts/cuda-check.sh and scripts/gpu-smoke.sh (not run on its own): installs the
# CUDA toolkit pieces that revstab's `cuda` feature needs from PyPI wheels into a virtual
# environment, reused when present, and exports the build environment.
#
#   cuda_toolchain PACKAGE...   install (or reuse) the wheels, then export PATH (nvcc),
#                               CUDA_ROOT/CUDA_PATH (the wheels' nvidia/cu13), CUDA_COMPUTE_CAP
#                               (default 90) and CUDARC_CUDA_VERSION (default 13000: cudarc 0.19
#                               rejects the wheels' 13.x minor version string)
#
# Environment: CUDA_TOOLCHAIN_DIR (default .cuda-toolchain, ignored by git), PYTHON (default
# python3, with the venv module). pip gives up after 3 retries of 30 s per connection and the
# whole install after 15 minutes; a failure is one line on stderr and a non-zero return.
# The wheels are CUDA 13 (driver >= 580 to run); for CUDA 12 pass the `-cu12` package names and
# set CUDARC_CUDA_VERSION (e.g. 12090).

CUDA_BASE_PACKAGES=(nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-crt nvidia-cuda-cccl)

cuda_toolchain_fail() { echo "cuda-toolchain: $*" >&2; return 1; }

cuda_toolchain_root() {
    # The wheels put the toolkit under site-packages/nvidia/cu<major>/.
    local nvcc
    nvcc=$(find "$1" -path '*/site-packages/nvidia/cu*/bin/nvcc' -type f 2>/dev/null | head -n 1)
    [ -n "$nvcc" ] && (cd "$(dirname "$nvcc")/.." && pwd)
}

cuda_toolchain() {
    local dir="${CUDA_TOOLCHAIN_DIR:-.cuda-toolchain}" python="${PYTHON:-python3}"
    local stamp="$dir/.installed" wanted="$*" root
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && root=$(cuda_toolchain_root "$dir"); then
        echo "cuda-toolchain: reusing $dir ($wanted)"
    else
        command -v "$python" >/dev/null 2>&1 \
            || { cuda_toolchain_fail "no '$python' on PATH (needed to install nvcc from PyPI; set PYTHON)"; return 1; }
        if [ ! -x "$dir/bin/pip" ]; then
            rm -rf "$dir"
            "$python" -m venv "$dir" \
                || { cuda_toolchain_fail "could not create a virtual environment with '$python -m venv'"; return 1; }
        fi
        echo "cuda-toolchain: installing $wanted into $dir"
        if ! timeout 900 "$dir/bin/pip" install --disable-pip-version-check --no-input \
                --retries 3 --timeout 30 "$@"; then
            cuda_toolchain_fail "could not install $wanted from PyPI (no network, or the packages are unavailable)"
            return 1
        fi
        root=$(cuda_toolchain_root "$dir") \
            || { cuda_toolchain_fail "the wheels installed but no nvcc was found under $dir/*/site-packages/nvidia/cu*/bin"; return 1; }
        echo "$wanted" > "$stamp"
    fi
    export PATH="$root/bin:$PATH"
    export CUDA_ROOT="$root" CUDA_PATH="$root"
    export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
    export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
}
