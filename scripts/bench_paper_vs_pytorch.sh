#!/usr/bin/env bash
# Side-by-side stored-mode step time of the paper's networks (hybrid D = 4, 8 and layer-wise
# D = 8; width 32, pools c,c,b, batch 32 of 3x32x32, cross-entropy, SGD with momentum and weight
# decay): revstab `bench` against its PyTorch twin scripts/pytorch_paper_step.py, run in
# alternation ROUNDS times on the same machine so that load from elsewhere hits both alike. The
# parameter counts of the two are compared first (the script stops if they differ).
# Prints every round and, per network, the median over rounds of each tool's median s/step and
# the throughput ratio (PyTorch s/step over ours: above 1 means revstab is faster).
#   scripts/bench_paper_vs_pytorch.sh [ROUNDS=5] [PYTHON=python3] [THREADS=2]
# Needs a PyTorch install for PYTHON (not a dependency of revstab) and builds the bench first.
set -euo pipefail
rounds=${1:-5}; py=${2:-python3}; threads=${3:-2}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
nets=("hybrid 4,8" "layerwise 8")
bench() { # ARCH DEPTHS
  ./target/release/bench --arch "$1" --width 32 --pools c,c,b --input-size 32 --batch 32 \
    --depths "$2" --modes stored --threads "$threads" --out "$out/b" 2>/dev/null
}
for net in "${nets[@]}"; do
  set -- $net
  ours=$(bench "$1" "$2" | awk '$1 == "parameters" { sub("D=", "", $2); print $2, $3 }')
  theirs=$("$py" scripts/pytorch_paper_step.py --arch "$1" --depths "$2" --threads "$threads" \
    --steps 1 --warmup 0 | awk '{ sub("D=", "", $3); sub(":", "", $3); print $3, $5 }')
  if [ "$ours" != "$theirs" ]; then
    echo "parameter counts differ for $1: revstab [$ours], pytorch [$theirs]" >&2
    exit 1
  fi
  echo "$1 parameters (depth count): $(echo $ours)"
done
for r in $(seq 1 "$rounds"); do
  for net in "${nets[@]}"; do
    set -- $net
    bench "$1" "$2" | awk -v r="$r" -v a="$1" '$1 == "stored" { print "revstab", a, r, $2, $3 }' \
      | tee -a "$out/all"
    "$py" scripts/pytorch_paper_step.py --arch "$1" --depths "$2" --threads "$threads" \
      | awk -v r="$r" '{ sub("D=", "", $3); sub(":", "", $3); print "pytorch", $2, r, $3, $7 }' \
      | tee -a "$out/all"
  done
done
python3 - "$out/all" <<'PY'
import sys, statistics as st, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    tool, arch, r, d, s = line.split()
    t[(tool, arch, int(d))].append(float(s))
print("network        revstab s/step  pytorch s/step  pytorch/revstab (median; range over rounds)")
for arch, d in sorted({(a, d) for _, a, d in t}):
    a, b = t[("revstab", arch, d)], t[("pytorch", arch, d)]
    ratios = [y / x for x, y in zip(a, b)]
    print(f"{arch + ' D=' + str(d):<15}{st.median(a):>14.4f}{st.median(b):>16.4f}"
          f"{st.median(b) / st.median(a):>10.2f}x  ({min(ratios):.2f}-{max(ratios):.2f})")
PY
