#!/usr/bin/env bash
# The whole real-data reproduction (Hascoet Fig. 12 and 15, Gomez Fig. 4) on Fashion-MNIST,
# 3 seeds, then the three figures. Resumable: run it again after an interruption and only the
# unfinished runs are computed. Needs `apt-get install dataset-fashion-mnist`.
#   scripts/reproduce-real-data.sh [THREADS]      # default 2
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
cargo build --release --bin train --bin figures
start=$(date +%s)
./target/release/train --config experiments/accuracy.toml --threads "$threads" --resume --out results/accuracy
./target/release/train --config experiments/revnet-fig4.toml --threads "$threads" --resume --out results/angles
./target/release/figures --only fig12,fig15,revnet-fig4
echo "real-data reproduction: $(( $(date +%s) - start )) s of wall time in this invocation"
