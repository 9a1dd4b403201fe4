#!/usr/bin/env bash
# Side-by-side stored-mode step time of the same network (the bench's default: one-stage RevNet,
# width 32, batch 32 of 32x32, cross-entropy, SGD with momentum and weight decay), revstab `bench`
# against scripts/pytorch_revnet_step.py, run in alternation ROUNDS times on the same machine so
# that load from elsewhere hits both alike.
# Prints every round and, per depth, the median over rounds of each tool's median s/step and the
# throughput ratio (PyTorch s/step over ours: above 1 means revstab is faster).
#   scripts/bench_vs_pytorch.sh [ROUNDS=5] [PYTHON=python3] [THREADS=2]
# Needs a PyTorch install for PYTHON (not a dependency of revstab) and builds the bench first.
set -euo pipefail
rounds=${1:-5}; py=${2:-python3}; threads=${3:-2}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin bench
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  ./target/release/bench --workload stack --modes stored --threads "$threads" --out "$out/b" 2>/dev/null \
    | awk -v r="$r" '$1 == "stored" { print "revstab", r, $2, $3 }' | tee -a "$out/all"
  "$py" scripts/pytorch_revnet_step.py "$threads" \
    | awk -v r="$r" '{ sub("D=", "", $6); sub(":", "", $6); print "pytorch", r, $6, $8 }' | tee -a "$out/all"
done
python3 - "$out/all" <<'PY'
import sys, statistics as st, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, r, d, s = line.split()
    t[(tool, int(d))].append(float(s))
print("D  revstab s/step  pytorch s/step  pytorch/revstab (median; range over rounds)")
for d in sorted({d for _, d in t}):
    a, b = t[("revstab", d)], t[("pytorch", d)]
    ratios = [y / x for x, y in zip(a, b)]
    print(f"{d:<3}{st.median(a):>14.4f}{st.median(b):>16.4f}{st.median(b) / st.median(a):>10.2f}x"
          f"  ({min(ratios):.2f}-{max(ratios):.2f})")
PY
rm -rf "$out"
