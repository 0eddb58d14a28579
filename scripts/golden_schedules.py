"""Golden learning-rate multipliers for test/optim/schedules.test.ts.

An independent re-implementation, in plain Python floats, of the schedule lambdas in transformers'
optimization.py (linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup,
cosine_with_min_lr), written from their documented formulas. Each case records lambda(step) for
step = 0 .. num_training_steps + 2, so the edges (warmup end, last step, past the end) are covered.

Run: /usr/bin/python3 scripts/golden_schedules.py  → test/fixtures/optim/schedules.json
"""
import json
import math
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "test", "fixtures", "optim", "schedules.json")


def warmup(step, w):
    return step / max(1.0, w)


def lam(kind, step, w=0, t=0, num_cycles=None, power=1.0, lr_end=1e-7, lr_init=None, min_lr_rate=None):
    if kind == "constant":
        return 1.0
    if step < w:
        return warmup(step, w)
    if kind == "constant_with_warmup":
        return 1.0
    progress = (step - w) / max(1, t - w)
    if kind == "linear":
        return max(0.0, (t - step) / max(1, t - w))
    if kind == "cosine":
        c = 0.5 if num_cycles is None else num_cycles
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * c * 2.0 * progress)))
    if kind == "cosine_with_restarts":
        c = 1 if num_cycles is None else num_cycles
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((c * progress) % 1.0))))
    if kind == "cosine_with_min_lr":
        c = 0.5 if num_cycles is None else num_cycles
        f = 0.5 * (1.0 + math.cos(math.pi * c * 2.0 * progress))
        return max(0.0, f * (1 - min_lr_rate) + min_lr_rate)
    if kind == "polynomial":
        if step > t:
            return lr_end / lr_init
        pct_remaining = 1 - (step - w) / (t - w)
        return ((lr_init - lr_end) * pct_remaining**power + lr_end) / lr_init
    raise ValueError(kind)


CASES = [
    ("linear", dict(w=3, t=10), {}),
    ("linear", dict(w=0, t=7), {}),
    ("cosine", dict(w=2, t=12), {}),
    ("cosine", dict(w=0, t=10, num_cycles=1.0), {"numCycles": 1.0}),
    ("cosine_with_restarts", dict(w=2, t=20, num_cycles=3), {"numCycles": 3}),
    ("cosine_with_restarts", dict(w=0, t=9), {}),
    ("polynomial", dict(w=2, t=10, power=2.0, lr_end=1e-5, lr_init=1e-3), {"power": 2.0, "lrEnd": 1e-5, "lrInit": 1e-3}),
    ("polynomial", dict(w=0, t=5, lr_init=5e-5), {"lrInit": 5e-5}),
    ("constant", dict(w=3, t=6), {}),
    ("constant_with_warmup", dict(w=4, t=8), {}),
    ("cosine_with_min_lr", dict(w=2, t=10, min_lr_rate=0.1), {"minLrRate": 0.1}),
]

cases = []
for kind, kw, ts_extra in CASES:
    w, t = kw["w"], kw["t"]
    values = [lam(kind, s, **kw) for s in range(t + 3)]
    cases.append({"type": kind, "options": {"numWarmupSteps": w, "numTrainingSteps": t, **ts_extra}, "values": values})

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"generator": "scripts/golden_schedules.py", "cases": cases}, f, indent=1)
    f.write("\n")
print(f"wrote {OUT}: {len(cases)} cases")
