"""Applies a PEFT LoRA / rsLoRA / DoRA adapter folder to an HF base folder, independently of ts-finetune, and
prints or compares the merged model's logits. Used to check that adapters our TypeScript code saves are real
PEFT adapters (issue 7: "an adapter we save applies in an independent implementation").

It reads adapter_config.json (r, lora_alpha, use_rslora, use_dora, rank_pattern, alpha_pattern, fan_in_fan_out)
and adapter_model.safetensors by PEFT's key names ('base_model.model.<module>.lora_A.weight' [r, in],
'.lora_B.weight' [out, r], '.lora_magnitude_vector' [out]), merges as peft's LoraLayer.merge does
(W += s*B@A; DoRA: W = m/||W + s*B@A|| * (W + s*B@A)), and runs scripts/golden_common.forward.
What is not here: embedding / conv LoRA, modules_to_save, lora bias, quantized bases (all are rejected).

Usage:
  /usr/bin/python3 scripts/apply_adapter.py BASE_DIR ADAPTER_DIR
      [--input-ids '[[1,2,3],[1,5,0]]'] [--attention-mask '[[1,1,1],[1,1,0]]']   (default: the golden batch)
      [--compare FILE.safetensors --key logits]   compare against logits stored in a safetensors file
      [--compare-model MERGED_DIR]                compare against an HF folder holding a merged model
      [--out FILE.safetensors]                    write input_ids, attention_mask, merged_logits (F32)
      [--atol 1e-4]
Exit status 0 when every comparison is within atol (max abs difference), 1 otherwise.
"""
import argparse
import json
import math
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from golden_common import DT, Adapter, batch, f32, forward, load_model  # noqa: E402

PREFIX = "base_model.model."


def _pattern_value(patterns, module, default):
    """peft's get_pattern_key: a key matches a module name when re.match(rf'(.*\\.)?({key})$', name)."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def read_adapter(adapter_dir):
    """(adapter_config dict, {module: dict(A, B, m, scaling)}) read by PEFT key names."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    if acfg.get("peft_type") != "LORA":
        raise ValueError(f"{adapter_dir}: peft_type {acfg.get('peft_type')!r}, only LORA is supported")
    if acfg.get("bias", "none") != "none" or acfg.get("modules_to_save"):
        raise ValueError(f"{adapter_dir}: bias / modules_to_save adapters are not supported here")
    tensors = st.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
    mods = {}
    for key, t in tensors.items():
        m = re.fullmatch(r"base_model\.model\.(.+)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector)", key)
        if m is None:
            raise ValueError(f"{adapter_dir}: unexpected key {key}")
        mods.setdefault(m.group(1), {})[m.group(2)] = t.to(DT)
    out = {}
    for module, parts in mods.items():
        if "lora_A.weight" not in parts or "lora_B.weight" not in parts:
            raise ValueError(f"{adapter_dir}: {module} lacks lora_A or lora_B")
        A, B = parts["lora_A.weight"], parts["lora_B.weight"]
        r = _pattern_value(acfg.get("rank_pattern"), module, acfg["r"])
        alpha = _pattern_value(acfg.get("alpha_pattern"), module, acfg["lora_alpha"])
        if A.shape[0] != r or B.shape[1] != r:
            raise ValueError(f"{adapter_dir}: {module} lora_A {list(A.shape)} / lora_B {list(B.shape)} but r={r}")
        scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
        if acfg.get("use_dora") and "lora_magnitude_vector" not in parts:
            raise ValueError(f"{adapter_dir}: use_dora but {module} has no lora_magnitude_vector")
        out[module] = {"A": A, "B": B, "m": parts.get("lora_magnitude_vector"), "scaling": scaling}
    return acfg, out


def merge(W, acfg, mods):
    """A copy of the base weights with the adapter merged in (peft LoraLayer.merge / DoraLinearLayer)."""
    W = dict(W)
    for module, p in mods.items():
        key = module + ".weight"
        if key not in W:
            raise ValueError(f"adapter targets {module}, which the base model does not have")
        w = W[key]
        delta = p["scaling"] * (p["B"] @ p["A"])
        if acfg.get("fan_in_fan_out"):
            delta = delta.T
        if delta.shape != w.shape:
            raise ValueError(f"{module}: delta {list(delta.shape)} does not fit weight {list(w.shape)}")
        if acfg.get("use_dora"):
            merged = w + delta
            W[key] = (p["m"] / torch.linalg.norm(merged, dim=1))[:, None] * merged
        else:
            W[key] = w + delta
    return W


def as_adapter(acfg, mods):
    """The same adapter as golden_common.Adapter (unmerged path), when every module has one scaling."""
    scalings = {p["scaling"] for p in mods.values()}
    if len(scalings) != 1:
        return None
    ad = Adapter(scalings.pop(), use_dora=bool(acfg.get("use_dora")))
    for module, p in mods.items():
        ad.A[module], ad.B[module] = p["A"], p["B"]
        if ad.use_dora:
            ad.m[module] = p["m"]
    return ad


def merged_logits(base_dir, adapter_dir, input_ids, attention_mask):
    cfg, W = load_model(base_dir)
    acfg, mods = read_adapter(adapter_dir)
    return forward(cfg, merge(W, acfg, mods), input_ids, attention_mask), (cfg, W, acfg, mods)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_dir")
    ap.add_argument("adapter_dir")
    ap.add_argument("--input-ids")
    ap.add_argument("--attention-mask")
    ap.add_argument("--compare")
    ap.add_argument("--key", default="logits")
    ap.add_argument("--compare-model")
    ap.add_argument("--out")
    ap.add_argument("--atol", type=float, default=1e-4)
    a = ap.parse_args()

    if a.input_ids:
        ids = torch.tensor(json.loads(a.input_ids), dtype=torch.int64)
        mask = torch.tensor(json.loads(a.attention_mask), dtype=torch.int64) if a.attention_mask else None
    else:
        ids, mask, _ = batch()
    logits, (cfg, W, acfg, mods) = merged_logits(a.base_dir, a.adapter_dir, ids, mask)
    print(f"adapter: {len(mods)} modules, r={acfg['r']}, lora_alpha={acfg['lora_alpha']}, "
          f"use_rslora={acfg.get('use_rslora', False)}, use_dora={acfg.get('use_dora', False)}")
    print(f"merged logits {list(logits.shape)}; [0, 0, :6] = {[round(float(v), 6) for v in logits[0, 0, :6]]}")

    ok = True
    ad = as_adapter(acfg, mods)
    if ad is not None:  # the unmerged path must agree with the merge (a self-check of this script)
        d = float((forward(cfg, W, ids, mask, ad) - logits).abs().max())
        print(f"unmerged vs merged (this script): max |diff| {d:.3e}")
        ok &= d < 1e-9
    if a.compare:
        other = st.load(a.compare)[a.key].to(DT)
        d = float((other - logits).abs().max())
        print(f"vs {a.compare}[{a.key}]: max |diff| {d:.3e} (atol {a.atol})")
        ok &= d <= a.atol
    if a.compare_model:
        cfg2, W2 = load_model(a.compare_model)
        d = float((forward(cfg2, W2, ids, mask) - logits).abs().max())
        print(f"vs merged model {a.compare_model}: max |diff| {d:.3e} (atol {a.atol})")
        ok &= d <= a.atol
    if a.out:
        tensors = {"input_ids": ids, "merged_logits": f32(logits)}
        if mask is not None:
            tensors["attention_mask"] = mask
        st.save(tensors, a.out, {"format": "pt"})
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
