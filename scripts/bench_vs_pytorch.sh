#!/usr/bin/env bash
# Side-by-side step time of the same network (the bench's stack workload: one-stage RevNet,
# width 32, batch 32 of 32x32, cross-entropy, SGD with momentum and weight decay), revstab `bench`
# against scripts/pytorch_revnet_step.py, with stored activations and with checkpointing (revstab's
# checkpointed source against torch.utils.checkpoint.checkpoint_sequential, both keeping the input
# of every K-th block, K = ceil(sqrt(D)) unless SEGMENT is given), run in alternation ROUNDS times
# on the same machine so that load from elsewhere hits both alike.
# Prints every round and, per mode and depth, the median over rounds of each tool's median s/step
# and the throughput ratio (PyTorch s/step over ours: above 1 means revstab is faster).
#   scripts/bench_vs_pytorch.sh [ROUNDS=5] [PYTHON=python3] [THREADS=2] [DEPTHS=4,8,16] [SEGMENT]
# Needs a PyTorch install for PYTHON (not a dependency of revstab) and builds the bench first
# (in $CARGO_TARGET_DIR when set).
set -euo pipefail
rounds=${1:-5}; py=${2:-python3}; threads=${3:-2}; depths=${4:-4,8,16}; segment=${5:-}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin bench
bench="${CARGO_TARGET_DIR:-target}/release/bench"
out=$(mktemp -d)
seg_flag=(); [ -n "$segment" ] && seg_flag=(--segment "$segment")
for r in $(seq 1 "$rounds"); do
  "$bench" --workload stack --depths "$depths" --modes stored,checkpointed "${seg_flag[@]}" \
    --threads "$threads" --out "$out/b" 2>/dev/null \
    | awk -v r="$r" '$1 == "stored" || $1 ~ /^checkpointed/ { print "revstab", $1, r, $2, $3 }' \
    | tee -a "$out/all"
  "$py" scripts/pytorch_revnet_step.py "$threads" "$depths" stored,checkpointed $segment \
    | awk -v r="$r" '{ sub("D=", "", $6); sub(":", "", $6); print "pytorch", $5, r, $6, $8 }' \
    | tee -a "$out/all"
done
python3 - "$out/all" <<'PY'
import sys, statistics as st, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, mode, r, d, s = line.split()
    t[(tool, mode, int(d))].append(float(s))
print("mode               D  revstab s/step  pytorch s/step  pytorch/revstab (median; range over rounds)")
for mode, d in sorted({(m, d) for _, m, d in t}, key=lambda k: (k[1], k[0] != "stored", k[0])):
    a, b = t[("revstab", mode, d)], t[("pytorch", mode, d)]
    if not a or not b:
        continue
    ratios = [y / x for x, y in zip(a, b)]
    print(f"{mode:<18} {d:<3}{st.median(a):>14.4f}{st.median(b):>16.4f}{st.median(b) / st.median(a):>10.2f}x"
          f"  ({min(ratios):.2f}-{max(ratios):.2f})")
PY
rm -rf "$out"
