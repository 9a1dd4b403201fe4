# Side-by-side reference for `cargo run --release --bin bench` (README, bench section). Needs a
# PyTorch install (not a dependency of revstab):
#   python3 scripts/pytorch_revnet_step.py [THREADS=2] [DEPTHS=4,8,16]
#
# The bench's default workload in PyTorch (CPU, stored activations = plain autograd), the same
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
# Output, one line per depth (scripts/bench_vs_pytorch.sh reads fields 6 and 8):
#   torch VERSION threads N stored D=D: median S s/step, I images/s, loss L
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
DEPTHS = [int(d) for d in sys.argv[2].split(",")] if len(sys.argv) > 2 else [4, 8, 16]
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
    def __init__(self, depth, width=WIDTH, classes=CLASSES):
        super().__init__()
        self.stem = conv3x3(IN_CHANNELS, width)
        self.blocks = nn.Sequential(*[RevBlock(width) for _ in range(depth)])
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        z = self.blocks(self.stem(x))
        return self.head(z.mean(dim=(2, 3)))


for depth in DEPTHS:
    net = RevNet(depth).train()
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
        f"torch {torch.__version__} threads {torch.get_num_threads()} stored D={depth}: "
        f"median {m:.4f} s/step, {BATCH / m:.1f} images/s, loss {loss.item():.4f}",
        flush=True,
    )
