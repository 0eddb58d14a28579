"""Golden values for test/optim/adamw.test.ts: torch.optim.AdamW's single-tensor update (torch >= 2.0,
`_single_tensor_adamw`, foreach=False) written out with the same torch in-place ops it calls, run on the
CPU in float32. The torch installed here (1.13) predates the lerp form of AdamW, so the loop is spelled out;
every kernel it uses (mul_, lerp_, addcmul_, sqrt, div, add_, addcdiv_) is torch's own.
Two parameter groups reproduce HF's decay / no-decay split (weight decay 0 for the masked elements).

Inputs are integer hashes turned into float32 exactly, so test/optim/adamw.test.ts regenerates them bit for
bit without storing them: x(i, t, salt) = ((i*2654435761 + t*97531 + salt*1234567) mod 2^24) / 2^24 - 0.5.

Run: /usr/bin/python3 scripts/golden_adamw.py  -> test/fixtures/optim/adamw_torch.json
"""
import json
import math
import os

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "test", "fixtures", "optim", "adamw_torch.json")


def x(i, t, salt):
    return ((i * 2654435761 + t * 97531 + salt * 1234567) % (1 << 24)) / float(1 << 24) - 0.5


def vec(n, t, salt, scale):
    return torch.tensor([x(i, t, salt) * scale(i) for i in range(n)], dtype=torch.float32)


def run(case):
    n, steps = case["n"], case["steps"]
    b1, b2, eps, wd = case["beta1"], case["beta2"], case["eps"], case["weight_decay"]
    p = vec(n, 0, 1, lambda i: 2.0)
    m = torch.zeros(n)
    v = torch.zeros(n)
    decay = torch.tensor([i % 3 != 0 for i in range(n)])
    for t in range(1, steps + 1):
        lr = case["lr"] * (1 - t / 200)
        g = vec(n, t, 2, lambda i: 2.0 ** -(i % 12))
        # two param groups: weight decay wd where decay, 0 elsewhere (torch multiplies by 1 - lr*0 = 1)
        for mask, w in ((decay, wd), (~decay, 0.0)):
            pp, gg, mm, vv = p[mask], g[mask], m[mask], v[mask]
            pp.mul_(1 - lr * w)
            mm.lerp_(gg, 1 - b1)
            vv.mul_(b2).addcmul_(gg, gg, value=1 - b2)
            bc1 = 1 - b1 ** t
            bc2 = 1 - b2 ** t
            step_size = lr / bc1
            denom = (vv.sqrt() / math.sqrt(bc2)).add_(eps)
            pp.addcdiv_(mm, denom, value=-step_size)
            p[mask], m[mask], v[mask] = pp, mm, vv
    return {**case, "param": p.tolist(), "exp_avg": m.tolist(), "exp_avg_sq": v.tolist()}


CASES = [
    {"name": "hf-defaults-wd", "n": 97, "steps": 40, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
    {"name": "lerp-large-weight", "n": 37, "steps": 10, "lr": 3e-2, "beta1": 0.3, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.0},
]

with open(OUT, "w") as f:
    json.dump({"generator": "scripts/golden_adamw.py", "torch": torch.__version__, "cases": [run(c) for c in CASES]}, f)
    f.write("\n")
print(f"wrote {OUT}")
