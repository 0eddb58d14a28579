#!/usr/bin/python3
"""Golden safetensors fixture made with torch, and a checker for files ts-finetune writes.

  /usr/bin/python3 scripts/make_safetensors_fixture.py
      writes test/fixtures/io/torch_written.safetensors (one small tensor of every dtype we support:
      F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL, plus a scalar and an empty tensor) and
      test/fixtures/io/torch_written.expected.json: per tensor the dtype, shape, the source values
      (before torch's casts) and the exact bit pattern of every element after them.
  /usr/bin/python3 scripts/make_safetensors_fixture.py --check PATH
      reads PATH (written by our TS writer from the JSON's source values) by hand and compares every
      tensor bit for bit with the tensors torch makes here (NaN matches any NaN: torch's own bf16 NaN is
      0x7FC0 or 0xFFFF depending on its code path); also checks the file layout. Exit 0 = equal.

There is no `safetensors` Python package on these machines, so the format is written and read by hand,
following huggingface/safetensors `safetensors/src/tensor.rs`: 8-byte LE header length, JSON header without
spaces, tensors sorted by descending dtype alignment then name, header padded with spaces to 8 bytes.
bf16 bytes come from `.view(torch.int16)` (numpy has no bfloat16). Values are deterministic: the bf16/f16
cases include exact round-to-nearest-even ties, overflow to inf, subnormals, NaN, +-inf and -0.0.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures", "io")
OUT_FILE = os.path.join(OUT_DIR, "torch_written.safetensors")
OUT_JSON = os.path.join(OUT_DIR, "torch_written.expected.json")
METADATA = {"format": "pt"}

# safetensors dtype, torch dtype, element size, rank in the Rust Dtype enum (increasing alignment)
DTYPES = {
    "BOOL": (torch.bool, 1, 0),
    "U8": (torch.uint8, 1, 1),
    "I8": (torch.int8, 1, 2),
    "I16": (torch.int16, 2, 5),
    "F16": (torch.float16, 2, 7),
    "BF16": (torch.bfloat16, 2, 8),
    "I32": (torch.int32, 4, 9),
    "F32": (torch.float32, 4, 11),
    "F64": (torch.float64, 8, 12),
    "I64": (torch.int64, 8, 13),
}
TORCH_TO_ST = {v[0]: k for k, v in DTYPES.items()}
BITS_VIEW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def f32_from_bits(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


# f32 bit patterns chosen to exercise f32 -> bf16 rounding (round to nearest, ties to even).
BF16_SOURCE_BITS = [
    0x3F800000,  # 1.0 exact
    0x3F808000,  # 1 + 2^-8: exact tie, lower neighbour even -> 0x3F80
    0x3F818000,  # tie, lower neighbour odd -> rounds up to 0x3F82
    0x3F808001,  # just above a tie -> 0x3F81
    0x3F807FFF,  # just below a tie -> 0x3F80
    0xBF818000,  # negative tie, odd -> 0xBF82
    0x7F7FFFFF,  # f32 max -> overflows to +inf in bf16
    0x7F7F7FFF,  # below the overflow tie -> 0x7F7F (bf16 max)
    0x00000001,  # smallest f32 subnormal -> +0
    0x00018000,  # subnormal tie, odd -> 0x0002
    0x80000000,  # -0.0
    0x7F800000,  # +inf
    0xFF800000,  # -inf
    0x7FC00000,  # NaN
    0x3EAAAAAB,  # 1/3
    0x40490FDB,  # pi
]

# f32 bit patterns for f32 -> f16 (IEEE half, RNE, overflow to inf, subnormals).
F16_SOURCE_BITS = [
    0x3F800000,  # 1.0
    0x3F801000,  # 1 + 2^-11: tie, lower even -> 0x3C00
    0x3F803000,  # 1 + 3*2^-11: tie, lower odd -> 0x3C02
    0x477FE000,  # 65504 (f16 max)
    0x477FEFFF,  # just below the overflow tie -> 65504
    0x477FF000,  # 65520: overflow tie -> inf
    0x33800000,  # 2^-24: smallest f16 subnormal
    0x33000000,  # 2^-25: tie between 0 and 2^-24 -> 0 (even)
    0x33C00000,  # 1.5 * 2^-24: tie -> 2^-23 (even)
    0x38800000,  # 2^-14: smallest f16 normal
    0x387FC000,  # just below 2^-14 -> subnormal 0x03FF/0x0400 boundary
    0x80000000,  # -0.0
    0x7F800000,  # +inf
    0xFF800000,  # -inf
    0x7FC00000,  # NaN
    0x3DCCCCCD,  # 0.1
]

F32_SOURCE_BITS = [0x00000000, 0x80000000, 0x3F800000, 0xC0200000, 0x7F7FFFFF, 0x00800000, 0x00000001, 0x7F800000, 0xFF800000,
                   0x7FC00000, 0x3DCCCCCD, 0x40490FDB]
F64_SOURCE = [0.0, -0.0, 1.0, 0.1, -2.5, 1e-310, 1.7976931348623157e308, float("inf"), float("-inf"), float("nan"),
              3.141592653589793, 1e100]
I64_SOURCE = [0, 1, -1, 2**53 + 1, -(2**53) - 3, 2**62, -(2**63), 2**63 - 1]
I32_SOURCE = [0, 1, -1, 2**31 - 1, -(2**31), 123456789]
I16_SOURCE = [0, 1, -1, 32767, -32768, 1234]
I8_SOURCE = [0, 1, -1, 127, -128, 42]
U8_SOURCE = [0, 1, 127, 128, 254, 255]
BOOL_SOURCE = [True, False, False, True, True, False]


def reference_tensors():
    """name -> (torch tensor, source dtype, source values as JSON-safe strings)."""
    out = {}
    bf = torch.from_numpy(f32_from_bits(BF16_SOURCE_BITS).copy())
    out["bf16.rne"] = (bf.to(torch.bfloat16).reshape(4, 4), "float32", [f"{b:08x}" for b in BF16_SOURCE_BITS])
    hf = torch.from_numpy(f32_from_bits(F16_SOURCE_BITS).copy())
    out["f16.rne"] = (hf.half().reshape(2, 8), "float32", [f"{b:08x}" for b in F16_SOURCE_BITS])
    out["f32.special"] = (torch.from_numpy(f32_from_bits(F32_SOURCE_BITS).copy()).reshape(3, 4), "float32",
                          [f"{b:08x}" for b in F32_SOURCE_BITS])
    f64 = torch.tensor(F64_SOURCE, dtype=torch.float64)
    out["f64.special"] = (f64.reshape(2, 3, 2), "float64", [struct.pack("<d", v)[::-1].hex() for v in F64_SOURCE])
    out["i64.values"] = (torch.tensor(I64_SOURCE, dtype=torch.int64).reshape(2, 4), "int64", [str(v) for v in I64_SOURCE])
    out["i32.values"] = (torch.tensor(I32_SOURCE, dtype=torch.int32).reshape(2, 3), "int32", [str(v) for v in I32_SOURCE])
    out["i16.values"] = (torch.tensor(I16_SOURCE, dtype=torch.int16).reshape(3, 2), "int16", [str(v) for v in I16_SOURCE])
    out["i8.values"] = (torch.tensor(I8_SOURCE, dtype=torch.int8), "int8", [str(v) for v in I8_SOURCE])
    out["u8.values"] = (torch.tensor(U8_SOURCE, dtype=torch.uint8).reshape(1, 6), "uint8", [str(v) for v in U8_SOURCE])
    out["bool.mask"] = (torch.tensor(BOOL_SOURCE, dtype=torch.bool).reshape(2, 3), "bool", [str(int(v)) for v in BOOL_SOURCE])
    out["scalar"] = (torch.tensor(2.5, dtype=torch.float32), "float32", ["40200000"])
    out["empty"] = (torch.zeros(0, 3, dtype=torch.int32), "int32", [])
    # Names chosen to sort differently by name than by alignment, and an integer-like name.
    out["0"] = (torch.arange(4, dtype=torch.float32), "float32", [f"{b:08x}" for b in f32_from_bits([0, 0x3F800000, 0x40000000, 0x40400000]).view(np.uint32)])
    return out


def raw_bytes(t):
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().tobytes()
    return t.contiguous().numpy().tobytes()


def bit_patterns(t):
    size = DTYPES[TORCH_TO_ST[t.dtype]][1]
    return [f"{int(v):0{size * 2}x}" for v in np.frombuffer(raw_bytes(t), dtype=BITS_VIEW[size])]


def same_bits(a, b):
    """Bit-exact, except that any NaN equals any NaN: torch itself makes 0x7FC0 (scalar path) or 0xFFFF
    (vectorized path) for a bf16 NaN, so NaN payload and sign are not part of its contract."""
    if raw_bytes(a) == raw_bytes(b):
        return True
    if not a.is_floating_point():
        return False
    na, nb = torch.isnan(a.float()), torch.isnan(b.float())
    if not torch.equal(na, nb):
        return False
    keep = ~na.reshape(-1)
    return raw_bytes(a.reshape(-1)[keep]) == raw_bytes(b.reshape(-1)[keep])


def serialize(tensors, metadata):
    order = sorted(tensors.items(), key=lambda kv: (-DTYPES[TORCH_TO_ST[kv[1].dtype]][2], kv[0].encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, t in order:
        b = raw_bytes(t)
        header[name] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)


def read_by_hand(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if n % 8 != 0:
        raise ValueError(f"header length {n} is not a multiple of 8")
    raw = data[8:8 + n]
    if raw.rstrip(b" ") != raw.rstrip():
        raise ValueError("header padding is not spaces")
    header = json.loads(raw.decode("utf-8"), object_pairs_hook=lambda pairs: pairs)
    body = data[8 + n:]
    tensors = {}
    metadata = {}
    pos = 0
    order = []
    for name, info in header:
        if name == "__metadata__":
            metadata = dict(info)
            continue
        info = dict(info)
        dt, (begin, end) = info["dtype"], info["data_offsets"]
        if begin != pos:
            raise ValueError(f"{name}: data starts at {begin}, expected {pos} (header not in file order?)")
        pos = end
        torch_dtype, size, _ = DTYPES[dt]
        chunk = body[begin:end]
        if dt == "BF16":
            t = torch.from_numpy(np.frombuffer(chunk, dtype=np.int16).copy()).view(torch.bfloat16)
        elif dt == "BOOL":
            t = torch.from_numpy(np.frombuffer(chunk, dtype=np.uint8).copy()).to(torch.bool)
        else:
            t = torch.from_numpy(np.frombuffer(chunk, dtype=torch.empty(0, dtype=torch_dtype).numpy().dtype).copy())
        tensors[name] = t.reshape(info["shape"])
        order.append((name, dt))
    if pos != len(body):
        raise ValueError(f"data section has {len(body)} bytes, tensors cover {pos}")
    expected_order = sorted(order, key=lambda x: (-DTYPES[x[1]][2], x[0].encode("utf-8")))
    if order != expected_order:
        raise ValueError(f"tensor order {[o[0] for o in order]} is not safetensors' {[o[0] for o in expected_order]}")
    return tensors, metadata


def check(path):
    ref = reference_tensors()
    got, metadata = read_by_hand(path)
    problems = []
    if set(got) != set(ref):
        problems.append(f"names differ: missing {sorted(set(ref) - set(got))}, extra {sorted(set(got) - set(ref))}")
    for name, (t, _, _) in ref.items():
        if name not in got:
            continue
        g = got[name]
        if g.dtype != t.dtype or list(g.shape) != list(t.shape):
            problems.append(f"{name}: {g.dtype}{list(g.shape)} != {t.dtype}{list(t.shape)}")
        elif not same_bits(g, t):
            problems.append(f"{name}: bits differ: got {bit_patterns(g)} expected {bit_patterns(t)}")
    if metadata != METADATA:
        problems.append(f"metadata {metadata} != {METADATA}")
    for p in problems:
        print("MISMATCH", p)
    if problems:
        return 1
    print(f"OK {len(got)} tensors bit-exact with torch {torch.__version__}")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) != 1:
        print(__doc__)
        sys.exit(2)
    ref = reference_tensors()
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(OUT_FILE, "wb") as f:
        f.write(serialize({k: v[0] for k, v in ref.items()}, METADATA))
    expected = {
        "generator": f"scripts/make_safetensors_fixture.py, torch {torch.__version__}",
        "metadata": METADATA,
        "tensors": {
            name: {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape), "source_dtype": sdt, "source": src, "bits": bit_patterns(t)}
            for name, (t, sdt, src) in ref.items()
        },
    }
    with open(OUT_JSON, "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    # The file must pass its own check (catches a writer/reader disagreement in this script).
    if check(OUT_FILE) != 0:
        sys.exit(1)
    print(f"wrote {OUT_FILE} ({os.path.getsize(OUT_FILE)} bytes) and {OUT_JSON}")


if __name__ == "__main__":
    main()
