# Side-by-side reference for `cargo run --release --bin bench` (README, bench section). Needs a
# PyTorch install (not a dependency of revstab): python3 scripts/pytorch_revnet_step.py [THREADS]
#
# Issue 7 workload in PyTorch (CPU, stored activations = plain autograd): D additive coupling
# blocks on 32 channels (16 + 16), F = G = conv3x3 - BN (batch stats) - ReLU - conv3x3, no bias,
# batch 32 of 32x32, f32, loss sum(y * r), plain SGD w -= lr g. Median of 5 steps after 1 warm-up.
import sys, time, statistics, torch, torch.nn as nn
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)
def fg(c):
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                         nn.Conv2d(c, c, 3, padding=1, bias=False))
class Block(nn.Module):
    def __init__(self, c):
        super().__init__(); self.f = fg(c); self.g = fg(c)
    def forward(self, x):
        x1, x2 = x.chunk(2, 1)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], 1)
for d in (4, 8, 16):
    net = nn.Sequential(*[Block(16) for _ in range(d)])
    x = torch.randn(32, 32, 32, 32); r = torch.randn(32, 32, 32, 32)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    ts = []
    for i in range(6):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = (net(x) * r).sum()
        loss.backward()
        opt.step()
        if i > 0: ts.append(time.perf_counter() - t0)
    m = statistics.median(ts)
    print(f"torch {torch.__version__} threads {torch.get_num_threads()} stored D={d}: median {m:.4f} s/step, {32/m:.1f} images/s")
