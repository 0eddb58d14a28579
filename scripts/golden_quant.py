#!/usr/bin/python3
"""Golden vectors for src/quant: an independent NumPy implementation of bitsandbytes' quantisers.

Written from bitsandbytes' source semantics, not by calling it (bitsandbytes is not installed here):
  - 4-bit (csrc/kernels.cu kQuantizeBlockwise + dQuantizeNF4 / dQuantizeFP4): x * float32(1/absmax), then
    the code = how many of the kernel's float32 thresholds lie strictly below x (the comparison tree is a
    binary search over them); FP4 takes the sign bit apart and orders its magnitude codes by value.
  - 8-bit 'cuda' (kernels.cu dQuantize<0>): the 7-step pivot search simulated on whole arrays.
  - 8-bit 'cpu' (cpu_ops.cpp quantize_cpu + common.cpp quantize_block): map[0] := -1, x / absmax,
    searchsorted(side='right') - 1, then the right neighbour only if strictly closer in float32.
  - create_dynamic_map: bitsandbytes' own Python (functional.py), run with this torch.
  - double quant: offset = mean(absmax) (both torch's float32 mean and a float64 mean are recorded).
The TypeScript implementation (src/quant) uses the literal comparison trees and a scalar binary search, so
the two share no code path. Zero blocks: bnb's GPU kernel gives NaN -> index 0; its C++ CPU search reads
out of bounds there, and both implementations use index 0 by convention.

Run:  /usr/bin/python3 scripts/golden_quant.py   (writes test/fixtures/quant/golden.json)
"""
import base64
import json
import os

import numpy as np
import torch

F = np.float32
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'quant', 'golden.json')


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode('ascii')


def fnv1a(a):
    h = 0x811C9DC5
    for byte in np.ascontiguousarray(a).tobytes():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


# ---------------------------------------------------------------- codebooks (functional.get_4bit_type)
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=F)
_fp4 = torch.tensor([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0])
_fp4.div_(_fp4.abs().max())
FP4 = _fp4.numpy().astype(F)
# kernels.cu dDequantizeFP4Tree literals must be the same float32 values
_tree = {1: 5.208333333e-03, 2: 0.66666667, 3: 1.0, 4: 0.33333333, 5: 0.5, 6: 0.16666667, 7: 0.25}
for k, v in _tree.items():
    assert F(v) == FP4[k], (k, v, FP4[k])

# kernels.cu dQuantizeNF4 thresholds, sorted
NF4_T = np.array(sorted([0.03979014977812767, 0.3893125355243683, 0.6427869200706482, 0.8614784181118011,
                         0.5016634166240692, 0.2035212516784668, 0.2920137718319893, 0.1202552504837513,
                         -0.33967943489551544, -0.13791173323988914, -0.045525018125772476, -0.23460740596055984,
                         -0.6106329262256622, -0.4599952697753906, -0.8480964004993439]), dtype=F)
# kernels.cu dQuantizeFP4 magnitude thresholds, sorted; codes of the magnitude bins in value order
FP4_T = np.array(sorted([0.29166667, 0.583333, 0.8333333, 0.4166667, 0.0859375, 0.20833333, 0.00260417]), dtype=F)
FP4_BIN_CODE = np.array([0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011], dtype=np.uint8)


def count_below(x, t):
    # number of thresholds strictly below x; NaN compares false everywhere -> 0
    return (x[:, None] > t[None, :]).sum(axis=1).astype(np.uint8)


def nf4_codes(x):
    return count_below(x, NF4_T)


def fp4_codes(x):
    sign = np.where(x < 0, 8, 0).astype(np.uint8)
    return FP4_BIN_CODE[count_below(np.abs(x), FP4_T)] + sign


# ---------------------------------------------------------------- create_dynamic_map (functional.py, verbatim semantics)
def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    assert additional_items == 0
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data.sort()
    return torch.tensor(data, dtype=torch.float32).numpy()


DYN_SIGNED = create_dynamic_map(True)
DYN_UNSIGNED = create_dynamic_map(False)


# ---------------------------------------------------------------- blockwise helpers
def blocks(n, bs):
    return [(s, min(n, s + bs)) for s in range(0, n, bs)]


def block_absmax(x, bs):
    return np.array([np.abs(x[s:e]).max() for s, e in blocks(len(x), bs)], dtype=F)


def quantize_4bit(x, quant_type, bs):
    n = len(x)
    absmax = block_absmax(x, bs)
    with np.errstate(divide='ignore', over='ignore', invalid='ignore'):
        inv = F(1) / absmax
        scaled = np.empty(n + (n & 1), dtype=F)
        for b, (s, e) in enumerate(blocks(n, bs)):
            scaled[s:e] = x[s:e] * inv[b]
        if n & 1:
            scaled[n] = F(0) * inv[-1]  # the kernel's zero-filled load, normalised like the rest
    codes = nf4_codes(scaled) if quant_type == 'nf4' else fp4_codes(scaled)
    packed = (codes[0::2] << 4) | codes[1::2]
    return packed.astype(np.uint8), absmax


def dequantize_4bit(packed, absmax, quant_type, bs, n):
    cb = NF4 if quant_type == 'nf4' else FP4
    codes = np.empty(len(packed) * 2, dtype=np.uint8)
    codes[0::2] = packed >> 4
    codes[1::2] = packed & 15
    codes = codes[:n]
    scale = np.repeat(absmax, bs)[:n]
    return (cb[codes] * scale).astype(F)


def dquantize_cuda(code, x):
    """kernels.cu dQuantize<0>, vectorised over x (float32)."""
    m = len(x)
    pivot = np.full(m, 127)
    upper_pivot = np.full(m, 255)
    lower_pivot = np.zeros(m, dtype=np.int64)
    lower = np.full(m, F(-1))
    upper = np.full(m, F(1))
    val = code[pivot]
    i = 64
    while i > 0:
        gt = x > val
        lower_pivot = np.where(gt, pivot, lower_pivot)
        lower = np.where(gt, val, lower)
        upper_pivot = np.where(gt, upper_pivot, pivot)
        upper = np.where(gt, upper, val)
        pivot = np.where(gt, pivot + i, pivot - i)
        val = code[pivot]
        i >>= 1
    upper = np.where(upper_pivot == 255, code[255], upper)
    lower = np.where(lower_pivot == 0, code[0], lower)
    gt = x > val
    mid_up = ((upper + val) * F(0.5)).astype(F)
    mid_lo = ((lower + val) * F(0.5)).astype(F)
    res = np.where(gt, np.where(x > mid_up, upper_pivot, pivot), np.where(x < mid_lo, lower_pivot, pivot))
    return res.astype(np.uint8)


def quantize_8bit(x, code, bs, kernel):
    code = code.copy()
    if kernel == 'cpu':
        code[0] = F(-1)
    absmax = block_absmax(x, bs)
    out = np.zeros(len(x), dtype=np.uint8)
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        for b, (s, e) in enumerate(blocks(len(x), bs)):
            if kernel == 'cuda':
                out[s:e] = dquantize_cuda(code, (x[s:e] * (F(1) / absmax[b])).astype(F))
            else:
                v = (x[s:e] / absmax[b]).astype(F)
                idx = np.searchsorted(code, v, side='right') - 1
                idx = np.where(np.isnan(v), 0, np.clip(idx, 0, 255))
                nxt = np.minimum(idx + 1, 255)
                dl = np.abs((v - code[idx]).astype(F))
                dr = np.abs((v - code[nxt]).astype(F))
                idx = np.where((idx < 255) & (dr < dl), idx + 1, idx)
                out[s:e] = idx
    return out, absmax, code


def dequantize_8bit(codes, absmax, code, bs):
    return (code[codes] * np.repeat(absmax, bs)[:len(codes)]).astype(F)


# ---------------------------------------------------------------- deterministic inputs, mirrored in the test
def mix32(x):
    x = x.astype(np.uint64) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def gen_weight(rows, cols, seed):
    """Approximately normal float32 values, row scale 2^-(row % 4); exactly reproducible in TypeScript."""
    n = rows * cols
    i = np.arange(n, dtype=np.uint64)
    s = np.zeros(n, dtype=np.float64)
    for k in range(3):
        s += (mix32(i * 3 + k + seed * 0x9E3779B9) >> 8).astype(np.float64)
    s -= 3 * 2 ** 23
    row = (np.arange(n) // cols) % 4
    return (s * np.exp2(-24.0 - row)).astype(F)


def special_weight():
    """[48, 70] weight with the cases that matter written into chosen blocks of 64."""
    x = gen_weight(48, 70, 1)
    x[3 * 64:4 * 64] = 0  # a zero block
    b = 7 * 64  # values exactly on the decision thresholds, with absmax 1 (so x * inv == x)
    vals = [F(1.0)] + list(NF4_T) + list(FP4_T) + list(-FP4_T) + list(NF4)
    x[b:b + 64] = np.array((vals + [F(0)] * 64)[:64], dtype=F)
    b = 9 * 64  # thresholds times 3: the reciprocal multiply rounds, either side of a threshold
    vals = [F(3.0)] + [F(t * F(3)) for t in NF4_T] + [F(t * F(3)) for t in FP4_T] + [F(-t * F(3)) for t in FP4_T]
    vals += [np.nextafter(F(t * F(3)), F(10)) for t in NF4_T]
    x[b:b + 64] = np.array((vals + [F(0.5)] * 64)[:64], dtype=F)
    b = 11 * 64  # tiny negatives and -0: FP4's sign bit
    x[b:b + 64] = np.array([F(1.0), F(-0.0), F(-1e-5), F(1e-5), F(-0.002), F(-0.003)] + [F(-1e-6)] * 58, dtype=F)
    b = 13 * 64  # subnormal absmax: 1/absmax overflows to inf
    x[b:b + 64] = np.array([F(1e-39), F(-1e-39), F(0), F(5e-40)] * 16, dtype=F)
    return x


def special_8bit(code):
    """1200 values: generated, all midpoints of the map (with a 1), zeros, all map values, generated tail."""
    base = gen_weight(1, 1200, 7)
    if code[0] >= 0:
        base = np.abs(base)
    x = base.copy()
    mids = ((code[:-1] + code[1:]) * F(0.5)).astype(F)
    x[256:512] = np.concatenate([[F(1.0)], mids])
    x[512:768] = 0
    x[768:1024] = code
    return x


# ---------------------------------------------------------------- cases
def case_4bit(name, x, shape, quant_type, bs, double_quant=False, store_full=True):
    n = len(x)
    packed, absmax = quantize_4bit(x, quant_type, bs)
    c = {'name': name, 'shape': list(shape), 'quantType': quant_type, 'blocksize': bs, 'doubleQuant': double_quant,
         'packed': b64(packed), 'absmax': b64(absmax)}
    scale = absmax
    if double_quant:
        offset32 = F(torch.from_numpy(absmax).mean().item())
        offset64 = F(absmax.astype(np.float64).mean())
        q, nabs, _ = quantize_8bit((absmax - offset64).astype(F), DYN_SIGNED, 256, 'cuda')
        scale = ((DYN_SIGNED[q] * np.repeat(nabs, 256)[:len(q)]).astype(F) + offset64).astype(F)
        c.update({'nestedCode': b64(q), 'nestedAbsmax': b64(nabs), 'offset': float(offset64),
                  'offsetTorchFloat32Mean': float(offset32), 'dequantAbsmax': b64(scale),
                  'quantStateJson': json.dumps({'quant_type': quant_type, 'blocksize': bs, 'dtype': 'float32',
                                                'shape': list(shape), 'nested_blocksize': 256,
                                                'nested_dtype': 'float32', 'nested_offset': float(offset64)})})
    deq = dequantize_4bit(packed, scale, quant_type, bs, n)
    c['dequantFnv1a'] = fnv1a(deq)
    if store_full:
        c['dequant'] = b64(deq)
    else:
        c['dequantEvery97'] = b64(deq[::97])
    return c


def main():
    fixtures = {
        'generated': 'scripts/golden_quant.py',
        'torch': torch.__version__,
        'nf4': b64(NF4), 'fp4': b64(FP4),
        'dynamicSigned': b64(DYN_SIGNED), 'dynamicUnsigned': b64(DYN_UNSIGNED),
        'gen': [{'rows': 3, 'cols': 5, 'seed': 11, 'values': b64(gen_weight(3, 5, 11))}],
    }
    w = special_weight()
    fixtures['special'] = b64(w)
    odd1 = gen_weight(7, 9, 3)
    odd2 = gen_weight(5, 13, 4)
    odd2[64] = 0  # the one-element tail block is all zero: absmax 0, pad nibble from NaN
    fixtures['odd1'] = b64(odd1)
    fixtures['odd2'] = b64(odd2)
    cases = [
        case_4bit('special nf4 bs64', w, (48, 70), 'nf4', 64),
        case_4bit('special fp4 bs64', w, (48, 70), 'fp4', 64),
        case_4bit('special nf4 bs128', w, (48, 70), 'nf4', 128),
        case_4bit('special fp4 bs32', w, (48, 70), 'fp4', 32),
        case_4bit('special nf4 bs64 double-quant', w, (48, 70), 'nf4', 64, True),
        case_4bit('odd1 nf4 bs32', odd1, (7, 9), 'nf4', 32),
        case_4bit('odd1 fp4 bs32', odd1, (7, 9), 'fp4', 32),
        case_4bit('odd2 nf4 bs32', odd2, (5, 13), 'nf4', 32),
        case_4bit('odd2 fp4 bs32', odd2, (5, 13), 'fp4', 32),
    ]
    big = gen_weight(250, 99, 5)
    big[5 * 64:6 * 64] = 0
    fixtures['bigGen'] = {'rows': 250, 'cols': 99, 'seed': 5, 'zeroBlock64': 5}
    cases.append(case_4bit('big nf4 bs64 double-quant', big, (250, 99), 'nf4', 64, True, store_full=False))
    cases.append(case_4bit('big fp4 bs64 double-quant', big, (250, 99), 'fp4', 64, True, store_full=False))
    fixtures['cases4bit'] = cases

    cases8 = []
    for signed, code in (('signed', DYN_SIGNED), ('unsigned', DYN_UNSIGNED)):
        x = special_8bit(code)
        fixtures['input8bit_' + signed] = b64(x)
        for kernel in ('cpu', 'cuda'):
            q, absmax, used = quantize_8bit(x, code, 256, kernel)
            deq = dequantize_8bit(q, absmax, used, 256)
            cases8.append({'map': signed, 'kernel': kernel, 'codes': b64(q), 'absmax': b64(absmax),
                           'code0': float(used[0]), 'dequant': b64(deq)})
    fixtures['cases8bit'] = cases8

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(fixtures, f, indent=1)
    print('wrote', os.path.normpath(OUT), os.path.getsize(OUT), 'bytes')
    for c in cases:
        if c['doubleQuant']:
            print(c['name'], 'offset f64-mean', c['offset'], 'torch f32 mean', c['offsetTorchFloat32Mean'])


if __name__ == '__main__':
    main()
