# Side-by-side reference for the paper's networks in `bench` (docs/tools/bench.md), the
# sibling of scripts/pytorch_revnet_step.py. Needs a PyTorch install (not a dependency of
# revstab):
#   python3 scripts/pytorch_paper_step.py --arch hybrid|layerwise [--depths 4,8] [--threads 2]
#       [--steps 5] [--warmup 1]
#   python3 scripts/pytorch_paper_step.py --arch hybrid --depths 8 --check DIR
#
# Times the workload of
#   bench --arch ARCH --width 32 --pools c,c,b --input-size 32 --batch 32 --depths D --modes stored
# in PyTorch (CPU, eager, stored activations = plain autograd), the same network as
# revstab::nets::Network::build_with for that config (BenchConfig::net_config: slope 0.2,
# eps_i 0, batch-norm eps 1e-5, 3 input channels, 10 classes), with revstab's parameter names
# and shapes:
# - stem: conv3x3 3 -> 32 channels, no bias (`stem.weight`);
# - 4 stages separated by the pools P_c, P_c, P_b; the D units (layer-wise) or blocks (hybrid)
#   are spread over the stages as NetConfig::units_per_stage does: D // 4 each, the first
#   D % 4 stages one more. Channels 32, 128, 512, 512; images 32x32, 16x16, 8x8, 4x4; the last
#   stage runs on 4 x 32 = 128 batch-pooled images;
# - P_c (space-to-depth): y[n, 4c + 2i + j, u, v] = x[n, c, 2u + i, 2v + j];
#   P_b (space-to-batch): y[(2i + j) B + n, c, u, v] = x[n, c, 2u + i, 2v + j];
# - invertible convolution on c channels (`*.f.weight`, `*.g.weight`): the additive coupling
#   y1 = x1 + f(x2), y2 = x2 + g(y1), out = [y1, y2], f and g conv3x3 on c/2 channels, no bias;
# - invertible batch norm on c channels (`*.gamma`, `*.beta`): training mode (batch statistics,
#   biased variance, eps 1e-5 inside the square root), scale |gamma + eps_i| with eps_i = 0;
# - invertible leaky ReLU: x if x > 0 else 0.2 x (no parameters);
# - layer-wise unit `sS.uU` (Hascoet et al. Fig. 7) on c channels: invertible conv (`conv`),
#   batch norm (`bn`), leaky ReLU;
# - hybrid block `sS.bU` (Fig. 8-9) on c channels: y1 = x1 + F(x2), y2 = x2 + G(y1), with
#   F = G = [invertible conv (`conv1`), BN (`bn1`), leaky ReLU, invertible conv (`conv2`),
#   BN (`bn2`)] on c/2 channels (so its convolutions are c/4 -> c/4);
# - head: mean over space and over the 4 batch-pooled copies of each image, linear 512 -> 10
#   with bias (`head.weight`, `head.bias`);
# - loss: mean cross-entropy on uniform random labels;
# - SGD lr 0.1 (constant), momentum 0.9, weight decay 5e-4 on every parameter (coupled L2, as
#   revstab::train::Sgd).
# Batch 32 of 32x32 unit-Gaussian images, f32. Median of --steps steps (zero_grad, forward,
# backward, optimiser step) after --warmup warm-up steps, as scripts/pytorch_revnet_step.py.
# Weights drawn like revstab's (convolutions N(0, 2 / fan_in), head N(0, 1 / 512), gamma 1,
# beta 0, biases 0) from torch's generator (other numbers; irrelevant for timing).
# Not matched, without effect on a training-mode step: the running statistics (revstab starts
# them at the first batch's, PyTorch at 0 and 1 with the same momentum 0.1 update) and the
# derivative of |gamma| at exactly gamma = 0 (revstab +1, PyTorch 0).
#
# Output, one line per depth, whitespace-separated (field 2 arch, 3 "D=<depth>:", 5 parameter
# count, 7 median s/step):
#   pytorch ARCH D=D: params P median S s/step images/s I loss L threads N torch VERSION
#
# --check DIR compares with revstab instead of timing (one depth): DIR holds the files of
#   cargo run --release --example torch_twin_dump -- ARCH DEPTH DIR [f32|f64]
# (weights.safetensors: revstab's initial weights; io.safetensors: the bench's input batch and
# what revstab's stored-mode bench step computes on it: logits, loss and gradients of a first
# step, logits and loss of a second step after one SGD update, the weights after two). The
# twin loads the weights (names and shapes must match exactly), runs the same two steps in f32
# and in f64 and prints the largest differences to revstab in its dtype next to the f32
# rounding level (twin f32 against twin f64); exit status 1 when a difference exceeds its
# tolerance (TOLERANCES). Reference files in f64 pin the network down to ~1e-14.
import argparse
import json
import statistics
import sys
import time
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH, BATCH, SIZE, CLASSES = 32, 32, 32, 10
IN_CHANNELS = 3
POOLS = ["c", "c", "b"]
SLOPE, EPS_I, BN_EPS, BN_MOMENTUM = 0.2, 0.0, 1e-5, 0.1
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


def conv3x3(cin, cout):
    """Conv 3x3, stride 1, zero padding 1, no bias; weights N(0, 2 / fan_in) as revstab's."""
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    nn.init.normal_(conv.weight, 0.0, (2.0 / (cin * 9)) ** 0.5)
    return conv


class Coupling(nn.Module):
    """Additive coupling on the channel halves: y1 = x1 + f(x2), y2 = x2 + g(y1)."""

    def __init__(self, f, g, names=("f", "g")):
        super().__init__()
        self.names = names
        self.add_module(names[0], f)
        self.add_module(names[1], g)

    def forward(self, x):
        f, g = (getattr(self, n) for n in self.names)
        x1, x2 = x.chunk(2, 1)
        y1 = x1 + f(x2)
        return torch.cat([y1, x2 + g(y1)], 1)


def inv_conv(c):
    """The paper's invertible convolution on c channels (f, g: conv3x3 on c/2 channels)."""
    return Coupling(conv3x3(c // 2, c // 2), conv3x3(c // 2, c // 2))


class InvBatchNorm(nn.Module):
    """Batch norm with scale |gamma + eps_i|; batch statistics in training mode."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c))
        self.beta = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x):
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            (self.gamma + EPS_I).abs(),
            self.beta,
            training=self.training,
            momentum=BN_MOMENTUM,
            eps=BN_EPS,
        )


class LeakyReLU(nn.Module):
    def forward(self, x):
        return F.leaky_relu(x, SLOPE)


def layerwise_unit(c):
    return nn.Sequential(OrderedDict(conv=inv_conv(c), bn=InvBatchNorm(c), act=LeakyReLU()))


def hybrid_block(c):
    def chain(h):
        return nn.Sequential(
            OrderedDict(
                conv1=inv_conv(h),
                bn1=InvBatchNorm(h),
                act=LeakyReLU(),
                conv2=inv_conv(h),
                bn2=InvBatchNorm(h),
            )
        )

    return Coupling(chain(c // 2), chain(c // 2), names=("F", "G"))


def channel_pool(x):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def batch_pool(x):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(3, 5, 0, 1, 2, 4).reshape(4 * b, c, h // 2, w // 2)


def units_per_stage(depth, stages):
    return [depth // stages + (1 if s < depth % stages else 0) for s in range(stages)]


class PaperNet(nn.Module):
    def __init__(self, arch, depth, width=WIDTH, pools=POOLS, classes=CLASSES):
        super().__init__()
        self.pools = list(pools)
        self.stem = conv3x3(IN_CHANNELS, width)
        c, groups = width, 1
        for s, units in enumerate(units_per_stage(depth, len(pools) + 1)):
            if arch == "layerwise":
                stage = OrderedDict((f"u{u}", layerwise_unit(c)) for u in range(units))
            else:
                stage = OrderedDict((f"b{u}", hybrid_block(c)) for u in range(units))
            self.add_module(f"s{s}", nn.Sequential(stage))
            if s < len(pools):
                if pools[s] == "c":
                    c *= 4
                else:
                    groups *= 4
        self.stages = len(pools) + 1
        self.groups = groups
        self.head = nn.Linear(c, classes)
        nn.init.normal_(self.head.weight, 0.0, (1.0 / c) ** 0.5)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        z = self.stem(x)
        for s in range(self.stages):
            z = getattr(self, f"s{s}")(z)
            if s < len(self.pools):
                z = channel_pool(z) if self.pools[s] == "c" else batch_pool(z)
        gb, c, h, w = z.shape
        pooled = z.reshape(self.groups, gb // self.groups, c, h * w).mean(3).mean(0)
        return self.head(pooled)


def param_count(net):
    return sum(p.numel() for p in net.parameters())


def time_depth(arch, depth, steps, warmup, device="cpu"):
    torch.manual_seed(0)
    net = PaperNet(arch, depth).train().to(device)
    x = torch.randn(BATCH, IN_CHANNELS, SIZE, SIZE).to(device)
    labels = torch.randint(0, CLASSES, (BATCH,)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        opt.step()
        sync()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    m = statistics.median(times)
    print(
        f"pytorch {arch} D={depth}: params {param_count(net)} median {m:.4f} s/step "
        f"images/s {BATCH / m:.1f} loss {loss.item():.4f} threads {torch.get_num_threads()} "
        f"torch {torch.__version__} device {device}",
        flush=True,
    )


# --- the check against revstab's files ----------------------------------------------------------

SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "U8": torch.uint8,
}


def read_safetensors(path):
    """A safetensors file as {name: tensor} (little-endian host; no safetensors package)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = bytearray(data[8 + n + start : 8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=SAFETENSORS_DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return out


def max_diff(a, b):
    return (a.double() - b.double()).abs().max().item()


def grad_diffs(a, b):
    """Gradients {name: tensor} a against the reference b: the norm of all differences over the
    norm of all of b, and the worst parameter's largest difference over its largest |b|."""
    num = sum(((a[n].double() - b[n].double()) ** 2).sum().item() for n in b) ** 0.5
    den = sum((b[n].double() ** 2).sum().item() for n in b) ** 0.5
    per = {n: max_diff(a[n], b[n]) / max(b[n].double().abs().max().item(), 1e-300) for n in b}
    worst = max(per, key=per.get)
    return num / den, per[worst], worst


def two_steps(net, x, labels):
    """Two training steps as the bench takes them: logits, loss and gradients of the first,
    logits and loss of the second, and the weights after both."""
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    out = {}
    for k in ("", "2"):
        opt.zero_grad(set_to_none=True)
        logits = net(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        out["logits" + k], out["loss" + k] = logits.detach(), loss.detach().reshape(1)
        if k == "":
            out["grad"] = {n: p.grad.detach().clone() for n, p in net.named_parameters()}
        opt.step()
    out["after2"] = {n: p.detach().clone() for n, p in net.named_parameters()}
    return out


# Largest differences accepted against revstab in its dtype: step 1 logits (max abs) and loss,
# step 2 logits and loss (after an update with the step 1 gradients), the step 1 gradients (norm
# of all differences over the norm of all gradients) and the weights after two steps (max abs).
# In f32 the gradients of these networks carry a rounding error of up to ~1e-3 of their norm
# (the twin in f32 against itself in f64 differs as much as revstab does), which the step 2 and
# later tolerances allow; in f64 everything agrees to ~1e-14.
TOLERANCES = {
    torch.float32: (1e-4, 1e-5, 1e-3, 1e-4, 1e-2, 1e-4),
    torch.float64: (1e-10, 1e-12, 1e-10, 1e-12, 1e-9, 1e-12),
}


def check(arch, depth, directory):
    weights = read_safetensors(f"{directory}/weights.safetensors")
    io = read_safetensors(f"{directory}/io.safetensors")
    ref_dtype = io["logits"].dtype
    ref = {k: v for k, v in io.items() if not k.startswith(("grad.", "after2."))}
    ref["grad"] = {k[5:]: v for k, v in io.items() if k.startswith("grad.")}
    ref["after2"] = {k[7:]: v for k, v in io.items() if k.startswith("after2.")}
    twin = {}
    for dtype in (torch.float32, torch.float64):
        net = PaperNet(arch, depth).train()
        ours = {n: tuple(p.shape) for n, p in net.named_parameters()}
        theirs = {n: tuple(t.shape) for n, t in weights.items()}
        if ours != theirs:
            print("parameter names/shapes differ:")
            for n in sorted(set(ours) | set(theirs)):
                if ours.get(n) != theirs.get(n):
                    print(f"  {n}: twin {ours.get(n)} revstab {theirs.get(n)}")
            return False
        net = net.to(dtype)
        net.load_state_dict({**net.state_dict(), **weights}, strict=True)
        twin[dtype] = two_steps(net, io["x"].to(dtype), io["labels"].long())
    same, t32, t64 = twin[ref_dtype], twin[torch.float32], twin[torch.float64]
    name = str(ref_dtype).replace("torch.", "")
    print(f"check {arch} D={depth} against revstab in {name}: params revstab "
          f"{sum(t.numel() for t in weights.values())} twin {param_count(net)} "
          f"({len(weights)} tensors, names and shapes equal)")
    print(f"  columns: |revstab - twin {name}|, then |twin f32 - twin f64| (the f32 rounding level)")
    tol = dict(zip(("logits", "loss", "logits2", "loss2", "grad", "after2"), TOLERANCES[ref_dtype]))
    ok = True

    def line(what, a, b, limit, extra=""):
        nonlocal ok
        bad = a > limit
        ok &= not bad
        print(f"  {what:<34} {a:.3e}   {b:.3e}{extra}{'  MISMATCH' if bad else ''}")

    for k, step in (("", "step 1"), ("2", "step 2")):
        print(f"  {step} loss: revstab {ref['loss' + k].item():.9f} twin {same['loss' + k].item():.9f}")
        line(f"{step} logits, max abs", max_diff(same["logits" + k], ref["logits" + k]),
             max_diff(t32["logits" + k], t64["logits" + k]), tol["logits" + k])
        line(f"{step} loss, abs", max_diff(same["loss" + k], ref["loss" + k]),
             max_diff(t32["loss" + k], t64["loss" + k]), tol["loss" + k])
    g, gw, worst = grad_diffs(same["grad"], ref["grad"])
    r, rw, rworst = grad_diffs(t32["grad"], t64["grad"])
    line("step 1 gradients, rel norm", g, r, tol["grad"])
    print(f"  {'step 1 gradients, worst parameter':<34} {gw:.3e}   {rw:.3e}"
          f"  (max abs over max |grad|: {worst}; {rworst})")
    line("weights after 2 steps, max abs",
         max(max_diff(same["after2"][n], ref["after2"][n]) for n in ref["after2"]),
         max(max_diff(t32["after2"][n], t64["after2"][n]) for n in ref["after2"]), tol["after2"])
    print(f"check {arch} D={depth} {name}: {'ok' if ok else 'MISMATCH'}", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", choices=["hybrid", "layerwise"], required=True)
    ap.add_argument("--depths", default="4,8", help="comma-separated (units or blocks)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--check", metavar="DIR", help="compare with revstab's files in DIR (one depth)")
    ap.add_argument("--device", default="cpu", help="timing device: cpu or cuda[:N] (synchronised per step)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    depths = [int(d) for d in args.depths.split(",")]
    if args.check:
        if len(depths) != 1:
            sys.exit("--check takes one depth")
        sys.exit(0 if check(args.arch, depths[0], args.check) else 1)
    for depth in depths:
        time_depth(args.arch, depth, args.steps, args.warmup, args.device)


if __name__ == "__main__":
    main()
