#!/usr/bin/env python3
"""Times the PyTorch reference training loop on the bags `mhim bench train` uses, on this machine.

Run with Debian's python3-torch (1.13, the same LibTorch the C++ build links), e.g.
  /usr/bin/python3 scripts/reference_bench.py --models abmil,transmil,mhim_pure,mhim --precision fp32,bf16
or through scripts/bench_vs_reference.sh, which prints both engines' epoch times and their ratios.

The issues quote the reference's epoch times measured on another machine; seconds do not travel between
machines, ratios measured side by side on one machine do. This script is not the reference's own code:
its models re-implement the reference's in plain torch (no einops or timm, which Debian does not
package): `abmil` (modules/abmil.py DAttention), `transmil` (modules/transmil.py TransMIL with
modules/nystrom_attention.py, from tests/fixtures/models/make_transmil_fixtures.py), `mhim_pure`
(modules/mhim.py MHIM with the `attn` aggregator, GRN off) and `mhim` (one v2 training iteration as the
reference's engine runs it: train-mode teacher without gradient, class-aware scores, top-ceil(N·0.03)
masking, GRN with merge_ratio 0.8, merge_k 5, merge_mm 0.9999, CE + 0.5 · consistency, teacher EMA
0.9999) -- the settings `mhim bench train` uses. Its training loop follows the reference's engine: batch
of one bag, Adam(lr 2e-4, weight decay 1e-5), autocast for bf16 (the reference's GradScaler disables
itself without CUDA). Bags and sizes come from the same seeded generator calls as `mhim bench train`, so
both engines see identical bags.
"""
import argparse
import copy
import importlib.util
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load_transmil_module():
    path = os.path.join(HERE, "..", "tests", "fixtures", "models", "make_transmil_fixtures.py")
    spec = importlib.util.spec_from_file_location("transmil_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fixture_pinv = module.newton_pinv

    def newton_pinv(a, steps):
        # The reference's torch.eye is float32 whatever the input: under bf16 autocast the matmuls give bf16
        # and each 13I - AZ(...) step is promoted back to float32 (the fixture's eye takes a's dtype).
        if a.dtype == torch.float32:
            return fixture_pinv(a, steps)
        magnitude = a.abs()
        z = a.transpose(-1, -2) / (magnitude.sum(dim=-1).max() * magnitude.sum(dim=-2).max())
        eye = torch.eye(a.shape[-1])
        for _ in range(steps):
            az = a @ z
            z = 0.25 * z @ (13 * eye - (az @ (15 * eye - (az @ (7 * eye - az)))))
        return z

    module.newton_pinv = newton_pinv
    return module


def xavier(module):
    """The reference's init: Xavier-normal Linear weights, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class Abmil(nn.Module):
    def __init__(self, dim, classes):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(dim, 512), nn.GELU(), nn.Dropout(0.25))
        self.attention = nn.Sequential(nn.Linear(512, 128), nn.Tanh(), nn.Linear(128, 1))
        self.classifier = nn.Linear(512, classes)
        xavier(self)

    def forward(self, bag):
        h = self.feature(bag)
        a = torch.softmax(self.attention(h).t(), dim=-1)
        return self.classifier(a @ h)


class CrossAttention(nn.Module):
    """The GRN's multi-head cross-attention (the reference's merge.py): 8 heads of 64, dropout 0.1."""

    def __init__(self, dim=512, heads=8, head_dim=64):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * head_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim), nn.Dropout(0.1))
        self.dropout = nn.Dropout(0.1)

    def forward(self, instances, queries):
        k, v = self.to_kv(instances).chunk(2, dim=-1)
        q = self.to_q(queries)
        split = lambda t: t.reshape(t.shape[0], self.heads, self.head_dim).transpose(0, 1)
        q, k, v = split(q), split(k), split(v)
        attention = self.dropout(torch.softmax(q @ k.transpose(-1, -2) * self.head_dim ** -0.5, dim=-1))
        return self.to_out((attention @ v).transpose(0, 1).reshape(queries.shape[0], -1))


class Merge(nn.Module):
    """The Global Recycle Network (modules/mhim_modules/merge.py `Merge`), training branch."""

    def __init__(self, dim=512, tokens=5, keep_ratio=0.8, momentum=0.9999):
        super().__init__()
        self.keep_ratio, self.momentum = keep_ratio, momentum
        self.norm = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim)
        bound = math.sqrt(6.0 / (3 * 16 * 16 + dim))
        self.global_q = nn.Parameter(torch.empty(1, tokens, dim).uniform_(-bound, bound), requires_grad=False)

    def forward(self, x):
        keep = int(x.shape[0] * self.keep_ratio)
        order = torch.rand(x.shape[0], device=x.device).argsort()
        kept, dropped = x[order[:keep]], x[order[keep:]]
        # float() because torch 1.13's CPU autocast leaves layer_norm with a bf16 input and float32 weights,
        # which fails; a no-op in fp32.
        z = self.attn(self.norm(dropped.float()), self.norm(self.global_q[0]))
        with torch.no_grad():
            self.global_q.data.mul_(self.momentum).add_(z.detach().unsqueeze(0).float(), alpha=1 - self.momentum)
        return torch.cat([kept, z.to(kept.dtype)])


class Mhim(nn.Module):
    """modules/mhim.py's MHIM with the `attn` aggregator (no-bias Linear(512,128)+ReLU+Linear(128,1),
    softmax pooling)."""

    def __init__(self, dim, classes, merge=True):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(dim, 512), nn.GELU())
        self.dp = nn.Dropout(0.25)
        self.merge = Merge() if merge else None
        self.attention = nn.Sequential(nn.Linear(512, 128, bias=False), nn.ReLU(), nn.Linear(128, 1, bias=False))
        self.predictor = nn.Linear(512, classes)
        xavier(self)

    def embed(self, bag):
        return self.dp(self.feature(bag))

    def pool(self, h):
        a = torch.softmax(self.attention(h).t(), dim=-1)  # [1, N]
        return a @ h, a

    def forward(self, bag):
        return self.predictor(self.pool(self.embed(bag))[0])


def mhim_loss(student, teacher, bag, label, mask_ratio=0.03, aux_alpha=0.5, temp_t=0.1):
    with torch.no_grad():
        h_t = teacher.embed(bag)
        z_t, a = teacher.pool(h_t)
        contributions = a.t() * h_t  # [N, 512]
        logits = contributions @ teacher.predictor.weight.t() + teacher.predictor.bias[0]
        scores = torch.softmax(logits.float(), dim=-1).max(dim=-1).values
        masked = scores.topk(math.ceil(bag.shape[0] * mask_ratio)).indices
        keep = torch.ones(bag.shape[0], dtype=torch.bool, device=bag.device)
        keep[masked] = False
    h = student.merge(student.embed(bag)[keep])
    z_s, _ = student.pool(h)
    task = F.cross_entropy(student.predictor(z_s).float(), label)
    consistency = torch.sum(-torch.softmax(z_t.float() / temp_t, -1) * torch.log_softmax(z_s.float(), -1), -1).mean()
    return task + aux_alpha * consistency


def make_bags(count, low, high, dim, seed):
    """The same generator calls, in the same order, as `mhim bench train`."""
    torch.manual_seed(seed)
    bags = []
    for i in range(count):
        n = low + int(torch.randint(high - low + 1, (1,)).item())
        bags.append((torch.randn(n, dim), torch.tensor([i % 2])))
    return bags


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="abmil,transmil,mhim_pure,mhim")
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per model; the first is not timed when >= 2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bags", type=int, default=60)
    parser.add_argument("--min-instances", type=int, default=500)
    parser.add_argument("--max-instances", type=int, default=3000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]: bags are copied there one per step")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    bags = make_bags(args.bags, args.min_instances, args.max_instances, args.dim, args.seed)
    print(f"reference bench: torch {torch.__version__}, {args.threads} threads, {len(bags)} bags, "
          f"mean {sum(b.shape[0] for b, _ in bags) // len(bags)} instances, D={args.dim}, {device}", flush=True)
    for name in args.models.split(","):
        for precision in args.precision.split(","):
            torch.manual_seed(1)
            if name == "abmil":
                model = Abmil(args.dim, 2)
            elif name == "transmil":
                model = xavier(load_transmil_module().TransMIL(args.dim, 2, 512))
            elif name in ("mhim_pure", "mhim"):
                model = Mhim(args.dim, 2, merge=name == "mhim")
            else:
                raise SystemExit(f"unknown model '{name}'")
            model.to(device)
            teacher = None
            if name == "mhim":
                teacher = copy.deepcopy(model)
                for p in teacher.parameters():
                    p.requires_grad_(False)
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4,
                                         weight_decay=1e-5)
            model.train()
            seconds = []
            for _ in range(args.epochs):
                start = time.perf_counter()
                for index in torch.randperm(len(bags)).tolist():
                    bag, label = bags[index]
                    bag, label = bag.to(device), label.to(device)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        if teacher is not None:
                            loss = mhim_loss(model, teacher, bag, label)
                        else:
                            out = model(bag)
                            loss = F.cross_entropy((out[0] if isinstance(out, tuple) else out).float(), label)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    if teacher is not None:
                        with torch.no_grad():
                            for t, s in zip(teacher.parameters(), model.parameters()):
                                t.mul_(0.9999).add_(s.detach(), alpha=1 - 0.9999)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds.append(time.perf_counter() - start)
            timed = seconds[1:] if len(seconds) >= 2 else seconds
            print(f"{name:<10} {precision:<5} {statistics.median(timed):9.3f} s/epoch", flush=True)


if __name__ == "__main__":
    main()
