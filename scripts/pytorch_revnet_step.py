# Side-by-side reference for `cargo run --release --bin bench` (docs/tools/bench.md). Needs a
# PyTorch install (not a dependency of revstab):
#   python3 scripts/pytorch_revnet_step.py [THREADS=2] [DEPTHS=4,8,16] [MODES=stored] [SEGMENT]
#
# MODES, comma-separated: `stored` (plain autograd) and `checkpointed`
# (torch.utils.checkpoint.checkpoint_sequential over the blocks, non-reentrant: the input of
# every SEGMENT-th block is kept and each segment recomputed in the backward; the last segment
# runs without checkpointing, as revstab's checkpointed source stores its top segment whole).
# SEGMENT: blocks per segment, default ceil(sqrt(D)) as revstab's `--segment`; the segments are
# ceil(D / SEGMENT) chunks of checkpoint_sequential (equal to revstab's when SEGMENT divides D).
# BatchNorm's running statistics are updated again by the recomputation (a known
# checkpoint_sequential effect); the batch statistics, hence the gradients, are not affected.
#
# The bench's stack workload in PyTorch (CPU, stored activations = plain autograd), the same
# network as revstab::nets::Network for arch revnet with no pooling (one stage):
# - stem: conv3x3 3 -> 32 channels, no bias;
# - D RevNet blocks on 32 channels (16 + 16): y1 = x1 + F(x2), y2 = x2 + G(y1), out = [y1, y2],
#   F = G = conv3x3 - BN - ReLU - conv3x3 - BN on 16 channels (convolutions without bias, batch
#   norm in training mode: batch statistics, eps 1e-5, affine, running-average momentum 0.1);
# - head: global average pool + linear 32 -> 10 (with bias);
# - loss: mean cross-entropy on uniform random labels;
# - SGD lr 0.1, momentum 0.9, weight decay 5e-4 (coupled L2, as revstab::train::Sgd).
# Batch 32 of 32x32 unit-Gaussian images, f32. Median of 5 steps (zero_grad, forward, backward,
# optimiser step) after 1 warm-up. Weights use PyTorch's default init (irrelevant for timing).
# Output, one line per mode and depth (scripts/bench_vs_pytorch.sh reads fields 5, 6 and 8):
#   torch VERSION threads N MODE D=D: median S s/step, I images/s, loss L
# with MODE `stored` or `checkpointed(k=K)`.
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint_sequential

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
DEPTHS = [int(d) for d in sys.argv[2].split(",")] if len(sys.argv) > 2 else [4, 8, 16]
MODES = sys.argv[3].split(",") if len(sys.argv) > 3 else ["stored"]
SEGMENT = int(sys.argv[4]) if len(sys.argv) > 4 else None
for mode in MODES:
    if mode not in ("stored", "checkpointed"):
        sys.exit(f"unknown mode {mode!r}: stored, checkpointed")
WIDTH, BATCH, SIZE, CLASSES = 32, 32, 32, 10
IN_CHANNELS = 3
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
WARMUP, STEPS = 1, 5

torch.set_num_threads(THREADS)
torch.manual_seed(0)


def conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


def residual_fn(c):
    """F or G of a RevNet block: conv3x3 - BN - ReLU - conv3x3 - BN."""
    return nn.Sequential(conv3x3(c, c), nn.BatchNorm2d(c), nn.ReLU(), conv3x3(c, c), nn.BatchNorm2d(c))


class RevBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.f = residual_fn(channels // 2)
        self.g = residual_fn(channels // 2)

    def forward(self, x):
        x1, x2 = x.chunk(2, 1)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], 1)


class RevNet(nn.Module):
    def __init__(self, depth, width=WIDTH, classes=CLASSES, segments=None):
        super().__init__()
        self.stem = conv3x3(IN_CHANNELS, width)
        self.blocks = nn.Sequential(*[RevBlock(width) for _ in range(depth)])
        self.head = nn.Linear(width, classes)
        # None: stored (plain autograd); else checkpoint_sequential with this many segments.
        self.segments = segments

    def forward(self, x):
        z = self.stem(x)
        if self.segments is None:
            z = self.blocks(z)
        else:
            z = checkpoint_sequential(self.blocks, self.segments, z, use_reentrant=False)
        return self.head(z.mean(dim=(2, 3)))


def segment_for(depth):
    k = SEGMENT if SEGMENT is not None else math.isqrt(depth - 1) + 1 if depth > 1 else 1
    if not 1 <= k <= depth:
        sys.exit(f"segment must be between 1 and the depth {depth} (got {k})")
    return k


for depth, mode in [(d, m) for d in DEPTHS for m in MODES]:
    k = segment_for(depth) if mode == "checkpointed" else None
    segments = None if k is None else -(-depth // k)
    label = "stored" if k is None else f"checkpointed(k={k})"
    torch.manual_seed(0)
    net = RevNet(depth, segments=segments).train()
    x = torch.randn(BATCH, IN_CHANNELS, SIZE, SIZE)
    labels = torch.randint(0, CLASSES, (BATCH,))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    times = []
    for i in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= WARMUP:
            times.append(dt)
    m = statistics.median(times)
    print(
        f"torch {torch.__version__} threads {torch.get_num_threads()} {label} D={depth}: "
        f"median {m:.4f} s/step, {BATCH / m:.1f} images/s, loss {loss.item():.4f}",
        flush=True,
    )
