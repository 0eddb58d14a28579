"""Minimal hand-written safetensors reader/writer (no `safetensors` package).

Format (https://github.com/huggingface/safetensors, README "Format"):
  8 bytes  little-endian u64 N = length of the JSON header (including padding)
  N bytes  UTF-8 JSON: {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}
           padded with spaces so that 8 + N is a multiple of 8 (what the Rust writer does)
  rest     the tensors' raw little-endian bytes; data_offsets are relative to the start of this buffer

Tensors are written in sorted-name order, contiguously, with no gaps (a reader must not rely on order).
BF16 is handled through torch's bfloat16 viewed as int16 (numpy has no bfloat16).
What is not here: F8 dtypes, memory mapping, lazy loading - fixtures are tiny.
"""
import json
import struct

import numpy as np
import torch

# safetensors dtype -> (numpy dtype for the raw bytes, torch dtype of the returned tensor)
_DTYPES = {
    "F64": (np.float64, torch.float64),
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "BF16": (np.int16, torch.bfloat16),  # raw bits, re-viewed as bfloat16
    "I64": (np.int64, torch.int64),
    "I32": (np.int32, torch.int32),
    "I16": (np.int16, torch.int16),
    "I8": (np.int8, torch.int8),
    "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}
_TORCH_TO_ST = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _to_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        arr = t.view(torch.int16).numpy()
    else:
        arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")


def serialize(tensors, metadata=None):
    """tensors: dict name -> torch.Tensor. Returns the file's bytes."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _TORCH_TO_ST:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        raw = _to_bytes(t)
        header[name] = {
            "dtype": _TORCH_TO_ST[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (8 - (8 + len(hjson)) % 8) % 8
    hjson += b" " * pad
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def save(tensors, path, metadata=None):
    with open(path, "wb") as f:
        f.write(serialize(tensors, metadata))


def load(path, with_metadata=False):
    """Returns dict name -> torch.Tensor (and the __metadata__ dict if asked)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        np_dtype, torch_dtype = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        arr = np.frombuffer(data[base + begin : base + end], dtype=np.dtype(np_dtype).newbyteorder("<"))
        numel = int(np.prod(shape)) if shape else 1
        if arr.size != numel:
            raise ValueError(f"{path}: tensor {name} has {arr.size} elements, shape {shape} needs {numel}")
        t = torch.from_numpy(arr.astype(np_dtype).copy()).reshape(shape)
        if torch_dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[name] = t
    return (out, meta) if with_metadata else out


def load_model_dir(folder):
    """All tensors of an HF model folder: model.safetensors, or the shards named in
    model.safetensors.index.json (weight_map)."""
    import os

    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(weight_map.values())):
            part = load(os.path.join(folder, shard))
            for k, v in part.items():
                if weight_map.get(k) != shard:
                    raise ValueError(f"{shard}: tensor {k} not mapped to this shard in the index")
                out[k] = v
        missing = set(weight_map) - set(out)
        if missing:
            raise ValueError(f"index names tensors missing from the shards: {sorted(missing)}")
        return out
    return load(os.path.join(folder, "model.safetensors"))
