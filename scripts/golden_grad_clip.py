"""Golden values for test/optim/grad-clip.test.ts from torch.nn.utils.clip_grad_norm_ (the function HF's
Trainer calls with max_grad_norm): three float32 gradients, clipped at max_norm 1.0 and 0.5 (both clip)
and 1e3 (no clip). Stores the inputs, torch's total norm and the clipped gradients.

Run: /usr/bin/python3 scripts/golden_grad_clip.py  → test/fixtures/optim/grad_clip.json
"""
import json
import math
import os

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "test", "fixtures", "optim", "grad_clip.json")

SIZES = [5, 17, 300]


def inputs():
    return [
        torch.tensor([math.sin(0.37 * i + k) * (k + 1) for i in range(n)], dtype=torch.float32)
        for k, n in enumerate(SIZES)
    ]


cases = []
for max_norm in [1.0, 0.5, 1e3]:
    grads = inputs()
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    cases.append({
        "max_norm": max_norm,
        "norm": float(norm),
        "clipped": [p.grad.tolist() for p in params],
    })

with open(OUT, "w") as f:
    json.dump({"generator": "scripts/golden_grad_clip.py", "torch": torch.__version__,
               "inputs": [g.tolist() for g in inputs()], "cases": cases}, f)
    f.write("\n")
print(f"wrote {OUT}")
