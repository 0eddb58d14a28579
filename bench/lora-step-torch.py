# The same LoRA training step as bench/lora-step.ts in PyTorch eager (the issue 7 comparison): Llama
# (RMSNorm, RoPE, grouped-KV attention with repeat_kv, SiLU MLP) written out as transformers'
# modeling_llama.py does in eager mode, LoRA as peft's lora.Linear (x W^T + (x A^T) B^T * alpha/r) on all 7
# linears, cross-entropy with -100 ignored, clip_grad_norm_(1.0), torch.optim.AdamW over the adapters.
# Driven by bench/lora-step.ts over stdin/stdout so its steps interleave with ours: one step per input line,
# one JSON line back. Not a test and not a golden reference (random weights, no fixed seed contract).
#   python3 bench/lora-step-torch.py LAYERS B T THREADS
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

L, B, T, THREADS = (int(a) for a in sys.argv[1:5])
C, H, K, FF, V, R, ALPHA = 512, 8, 4, 1376, 32000, 16, 32
D, G = C // H, H // K
torch.manual_seed(0)
torch.set_num_threads(THREADS)


def rand(*shape):
    return (torch.rand(*shape) - 0.5) * (2 * 0.02 * math.sqrt(3))


class LoraLinear(torch.nn.Module):
    def __init__(self, fin, fout):
        super().__init__()
        self.weight = rand(fout, fin)  # frozen: a plain tensor, not a Parameter
        self.A = torch.nn.Parameter((torch.rand(R, fin) - 0.5) * (2 / math.sqrt(fin)))
        self.B = torch.nn.Parameter(torch.zeros(fout, R))
        self.scaling = ALPHA / R

    def forward(self, x):
        return F.linear(x, self.weight) + F.linear(F.linear(x, self.A), self.B) * self.scaling


def rms_norm(x, w, eps=1e-5):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    return torch.cat((-x[..., D // 2 :], x[..., : D // 2]), dim=-1)


inv = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
emb = torch.cat((freqs, freqs), dim=-1)
COS, SIN = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, D]
MASK = torch.full((T, T), float("-inf")).triu(1)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = torch.ones(C), torch.ones(C)
        self.q, self.k, self.v, self.o = LoraLinear(C, H * D), LoraLinear(C, K * D), LoraLinear(C, K * D), LoraLinear(H * D, C)
        self.gate, self.up, self.down = LoraLinear(C, FF), LoraLinear(C, FF), LoraLinear(FF, C)

    def forward(self, h):
        x = rms_norm(h, self.ln1)
        q = self.q(x).view(B, T, H, D).transpose(1, 2)
        k = self.k(x).view(B, T, K, D).transpose(1, 2)
        v = self.v(x).view(B, T, K, D).transpose(1, 2)
        q, k = q * COS + rotate_half(q) * SIN, k * COS + rotate_half(k) * SIN
        k = k[:, :, None].expand(B, K, G, T, D).reshape(B, H, T, D)  # repeat_kv
        v = v[:, :, None].expand(B, K, G, T, D).reshape(B, H, T, D)
        p = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(D) + MASK, dim=-1)
        h = h + self.o((p @ v).transpose(1, 2).reshape(B, T, C))
        x = rms_norm(h, self.ln2)
        return h + self.down(F.silu(self.gate(x)) * self.up(x))


embed, norm, lm_head = rand(V, C), torch.ones(C), rand(V, C)
layers = [Layer() for _ in range(L)]
params = [p for layer in layers for p in layer.parameters()]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
g = torch.Generator().manual_seed(12345)
ids = torch.randint(0, V, (B, T), generator=g)
labels = torch.cat((ids[:, 1:], torch.full((B, 1), -100)), dim=1)


def step():
    h = embed[ids]
    for layer in layers:
        h = layer(h)
    logits = F.linear(rms_norm(h, norm), lm_head)
    loss = F.cross_entropy(logits.view(-1, V), labels.reshape(-1), ignore_index=-100)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return float(loss)


blas = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() or "mkl" in line.lower()})
print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "blas": blas, "torch": torch.__version__}), flush=True)
for _ in sys.stdin:
    c0, t0 = time.process_time(), time.perf_counter()
    loss = step()
    ms, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stepMs": ms, "cpuMs": cpu, "loss": loss, "maxRssMB": rss}), flush=True)
