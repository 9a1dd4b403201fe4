#!/usr/bin/env bash
# The whole real-data reproduction (Hascoet Fig. 12 and 15, Gomez Fig. 4) on Fashion-MNIST,
# 3 seeds, then the three figures. Resumable: run it again after an interruption and only the
# unfinished runs are computed. Needs `apt-get install dataset-fashion-mnist`.
#
#   scripts/reproduce-real-data.sh [THREADS]            # default 2; 47 minutes on 2 cores
#   scripts/reproduce-real-data.sh --quick [THREADS]    # the same pipeline on a sliver of the
#                                                       # data: seconds, checks that it runs
#
# --quick runs the same configs (every architecture, depth, slope and mode of them) on the first
# 64 training and 32 test images, one seed, one epoch of batch 32, a gradient-angle probe every
# step, and draws the three figures into $OUT/figures (never into figures/). CI runs it on IDX
# files its test writes.
#
# Environment:
#   BIN_DIR   directory of built `train` and `figures` binaries (default: build them with
#             `cargo build --release` and use target/release)
#   DATA_DIR  the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist, where the
#             Debian package puts them)
#   OUT       results directory (default results; --quick: results/quick)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [[ "${1:-}" == "--quick" ]]; then
    quick=1
    shift
fi
threads="${1:-2}"
data_dir="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"
if [[ -z "${BIN_DIR:-}" ]]; then
    cargo build --release --bin train --bin figures
    BIN_DIR=target/release
fi
start=$(date +%s)
if [[ $quick == 1 ]]; then
    out="${OUT:-results/quick}"
    data="fashion-mnist:${data_dir},train=64,test=32,fit=pool2-pad16"
    quick_args=(--data "$data" --seeds 0 --epochs 1 --batch 32)
    "$BIN_DIR/train" --config experiments/accuracy.toml "${quick_args[@]}" \
        --threads "$threads" --resume --out "$out/accuracy" -q
    "$BIN_DIR/train" --config experiments/revnet-fig4.toml "${quick_args[@]}" --angle-every 1 \
        --threads "$threads" --resume --out "$out/angles" -q
    "$BIN_DIR/figures" --only fig12,fig15,revnet-fig4 --accuracy-results "$out/accuracy" \
        --angles-results "$out/angles" --out "$out/figures" --results "$out/figures-cache"
else
    # The configs' own data spec (the Debian package's directory) unless DATA_DIR names
    # another: the spec is part of the config that --resume checks.
    data_args=()
    if [[ -n "${DATA_DIR:-}" ]]; then
        data_args=(--data "fashion-mnist:${data_dir},train=5000,test=5000,fit=pool2-pad16")
    fi
    "$BIN_DIR/train" --config experiments/accuracy.toml "${data_args[@]}" --threads "$threads" \
        --resume --out "${OUT:-results}/accuracy"
    "$BIN_DIR/train" --config experiments/revnet-fig4.toml "${data_args[@]}" --threads "$threads" \
        --resume --out "${OUT:-results}/angles"
    "$BIN_DIR/figures" --only fig12,fig15,revnet-fig4 --accuracy-results "${OUT:-results}/accuracy" \
        --angles-results "${OUT:-results}/angles"
fi
echo "real-data reproduction$([[ $quick == 1 ]] && echo ' (quick)'): $(( $(date +%s) - start )) s of wall time in this invocation"
