#!/usr/bin/env bash
# GPU smoke run: revstab on a CUDA GPU, with its CPU and PyTorch counterparts beside it.
#
#   scripts/gpu-smoke.sh [OUT=results/gpu-smoke] [DEVICE=cuda]
#
# Writes into OUT:
#   snr-sweep/            the default `snr-sweep` on DEVICE (layer-wise and hybrid, depths 1-32,
#                         six slopes, f32, with the f64 shadow)
#   snr-sweep-cpu/        the same sweep on the CPU, and snr-cpu-vs-gpu.txt comparing the two
#                         (they should agree to rounding: same weights, same batch)
#   bench/                `bench` of the paper's networks (hybrid and layer-wise, width 32, pools
#                         c,c,b, 32x32, batch 32, depths 4 and 8) in stored, reconstructed and
#                         algorithm1 modes, 10 timed steps each
#   train-hybrid/         one short training run of the paper's hybrid (depth 4, width 32, pools
#                         c,c,b, 32x32 synthetic images, 1 epoch of 1024 images, reconstructed)
#   pytorch.txt           PyTorch's stored step of the same networks on the same GPU
#                         (scripts/pytorch_paper_step.py --device cuda), when torch is installed
#   log.txt               everything printed, with the time of each part
# On an H200 the whole run should take well under 15 minutes after the build.
#
# What the GPU machine needs
# - The NVIDIA driver (libcuda.so.1; not on PyPI), new enough for CUDA 13 (>= 580). For an
#   older driver pass CUDA 12 wheels: CUDA_RUNTIME_PACKAGES and CUDA_BASE_PACKAGES with `-cu12`
#   names, and CUDARC_CUDA_VERSION=12090 (see scripts/cuda-toolchain.sh).
# - The CUDA libraries the binaries link to: cuBLAS (+ cuBLASLt), cuRAND and NVRTC. They come
#   from PyPI wheels (nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc), installed here beside
#   nvcc into .cuda-toolchain/, and found at run time through LD_LIBRARY_PATH (set below).
# - To build: a Rust toolchain (cargo) and nvcc (the nvidia-cuda-nvcc wheel, installed here).
#   CUDA_COMPUTE_CAP is the GPU's compute capability (default 90: H100/H200; nvidia-smi
#   --query-gpu=compute_cap). Without cargo on the GPU machine, build on a machine with the
#   same CUDA major version (this script with BUILD_ONLY=1) and copy target/release/{snr-sweep,
#   bench,train}; then run with BIN_DIR pointing at them.
# - For the PyTorch column: a Python with torch built for CUDA (PYTHON, default python3).
#
# Environment: BIN_DIR (prebuilt binaries: skip the build), BUILD_ONLY=1 (build and stop),
# PYTHON, CUDA_TOOLCHAIN_DIR, CUDA_COMPUTE_CAP, CUDARC_CUDA_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu-smoke}
device=${2:-cuda}
py=${PYTHON:-python3}
die() { echo "gpu-smoke: $*" >&2; exit 1; }
source scripts/cuda-toolchain.sh
read -r -a runtime_packages <<< "${CUDA_RUNTIME_PACKAGES:-nvidia-cublas nvidia-curand nvidia-cuda-nvrtc}"

# The CUDA libraries: the wheels' lib directory, with the unversioned names the linker wants
# (libcublas.so -> libcublas.so.13) and the driver's libcuda.
cuda_libraries() {
    local lib="$CUDA_ROOT/lib" name target driver
    for name in cublas cublasLt curand nvrtc cudart; do
        target=$(ls "$lib"/lib$name.so.* 2>/dev/null | sort | head -n 1)
        [ -n "$target" ] || die "lib$name.so.* missing from $lib (are ${runtime_packages[*]} installed?)"
        ln -sf "$(basename "$target")" "$lib/lib$name.so"
    done
    driver=$( (ldconfig -p 2>/dev/null || true) | awk '/libcuda\.so\.1 / { print $NF; exit }')
    [ -n "$driver" ] || driver=$(ls /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 2>/dev/null | head -n 1)
    [ -n "$driver" ] || die "no libcuda.so.1 (the NVIDIA driver) on this machine: it cannot run CUDA"
    ln -sf "$driver" "$lib/libcuda.so"
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

if [ -n "${BIN_DIR:-}" ]; then
    bin=$BIN_DIR
    for b in snr-sweep bench train; do [ -x "$bin/$b" ] || die "BIN_DIR=$bin has no $b"; done
    if [ -d "${CUDA_TOOLCHAIN_DIR:-.cuda-toolchain}" ]; then
        cuda_toolchain "${CUDA_BASE_PACKAGES[@]}" "${runtime_packages[@]}" || die "no CUDA libraries"
        cuda_libraries
    fi
else
    command -v cargo >/dev/null 2>&1 \
        || die "no cargo: install a Rust toolchain (rustup), or build elsewhere and pass BIN_DIR"
    cuda_toolchain "${CUDA_BASE_PACKAGES[@]}" "${runtime_packages[@]}" || die "no CUDA toolchain"
    cuda_libraries
    echo "gpu-smoke: cargo build --release --features cuda (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
    cargo build --release --features cuda --bin snr-sweep --bin bench --bin train \
        || die "cargo build --release --features cuda failed"
    bin=${CARGO_TARGET_DIR:-target}/release
fi
[ "${BUILD_ONLY:-0}" = 1 ] && { echo "gpu-smoke: built into $bin"; exit 0; }

mkdir -p "$out"
log="$out/log.txt"
: > "$log"
part() { # NAME COMMAND...: run, log, time
    local name=$1 t0=$SECONDS
    shift
    echo "== $name: $*" | tee -a "$log"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc, $((SECONDS - t0)) s" | tee -a "$log"
    return "$rc"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>/dev/null \
    || echo "nvidia-smi not available"; } | tee -a "$log"

status=0
part snr-sweep "$bin/snr-sweep" --device "$device" --out "$out/snr-sweep" || status=1
part snr-sweep-cpu "$bin/snr-sweep" --device cpu --out "$out/snr-sweep-cpu" || status=1
if [ -f "$out/snr-sweep/summary.csv" ] && [ -f "$out/snr-sweep-cpu/summary.csv" ]; then
    # One line per point: the lowest-layer SNRs (same-dtype and f64-shadow references) on both.
    echo "lowest-layer input SNR (dB), same-dtype reference (f64 shadow); diff = $device - cpu" \
        > "$out/snr-cpu-vs-gpu.txt"
    paste -d, "$out/snr-sweep-cpu/summary.csv" "$out/snr-sweep/summary.csv" | awk -F, '
        NR == 1 { n = NF / 2; for (i = 1; i <= n; i++) col[$i] = i; next }
        { a = col["lowest_snr_db"]; b = col["lowest_snr_db_f64"]
          d = ($(a) == $(a + n)) ? 0 : $(a + n) - $(a)
          printf "%-9s depth %2s slope %-4s  cpu %8s (%8s)  %s %8s (%8s)  diff %s\n",
                 $(col["arch"]), $(col["depth"]), $(col["slope"]), $(a), $(b), dev, $(a + n), $(b + n), d }
    ' dev="$device" >> "$out/snr-cpu-vs-gpu.txt"
    tee -a "$log" < "$out/snr-cpu-vs-gpu.txt"
fi
part bench "$bin/bench" --device "$device" --modes stored,reconstructed,algorithm1 --steps 10 \
    --warmup 2 --out "$out/bench" || status=1
part train-hybrid "$bin/train" --device "$device" --arch hybrid --depth 4 --width 32 \
    --pools c,c,b --data synthetic:train=1024,test=512,size=32 --epochs 1 --batch 32 \
    --mode reconstructed --out "$out/train-hybrid" --quiet || status=1
if "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    for net in "hybrid 4,8" "layerwise 4,8"; do
        set -- $net
        part "pytorch-$1" "$py" scripts/pytorch_paper_step.py --arch "$1" --depths "$2" \
            --device "$device" --steps 10 --warmup 2 | tee -a "$out/pytorch.txt" || status=1
    done
else
    echo "gpu-smoke: no PyTorch with CUDA for $py: the PyTorch column is skipped" | tee -a "$log"
fi
echo "gpu-smoke: outputs in $out (exit $status)"
exit "$status"
