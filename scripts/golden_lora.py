"""Golden LoRA losses and gradients: test/fixtures/golden/lora-<case>.{safetensors,json} and the adapters as
real PEFT folders: test/fixtures/golden/adapters/<case>/{adapter_config.json, adapter_model.safetensors}.

Run after scripts/make_tiny_models.py: /usr/bin/python3 scripts/golden_lora.py
LoRA on all 7 linears of every layer (q,k,v,o,gate,up,down), r=4, lora_alpha=8, dropout 0, with nonzero
A ~ 0.1 N(0,1) [r, in] and B ~ 0.1 N(0,1) [out, r] drawn per module in golden_common.lora_modules order
(A then B). DoRA: m = ||W + s*B@A|| per output row * (1 + 0.05 N(0,1)), drawn after all A/B.
The adapter weights are rounded to F32 first and everything is computed in float64 from the rounded values.
Loss = HF causal-LM loss on the golden batch; gradients by torch autograd (checked against finite
differences in scripts/golden_selfcheck.py). For lora-llama-mha, `merged_logits` comes from
scripts/apply_adapter.py reading the saved adapter folder by PEFT key names and merging W += s*B@A.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import apply_adapter  # noqa: E402
from golden_common import (  # noqa: E402
    ADAPTERS_DIR,
    DT,
    GOLDEN_DIR,
    MODELS_DIR,
    Adapter,
    batch,
    causal_lm_loss,
    dora_weight_norm,
    f32,
    forward,
    load_model,
    lora_modules,
    write_json,
)

R, ALPHA = 4, 8
PEFT_VERSION = "0.17.1"
TARGETS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]

# case -> (base model, seed, use_rslora, use_dora)
CASES = {
    "llama-mha": ("llama-mha", 2001, False, False),
    "llama-gqa": ("llama-gqa", 2002, False, False),
    "llama-tied": ("llama-tied", 2003, False, False),
    "qwen2": ("qwen2", 2004, False, False),
    "rslora": ("llama-mha", 2005, True, False),
    "dora": ("llama-mha", 2006, False, True),
}


def scaling_of(use_rslora):
    return ALPHA / math.sqrt(R) if use_rslora else ALPHA / R


def make_adapter(cfg, W, seed, use_rslora, use_dora):
    """An Adapter whose tensors are float64 copies of F32-rounded values, as leaf tensors needing grad."""
    g = torch.Generator().manual_seed(seed)
    ad = Adapter(scaling_of(use_rslora), use_dora)
    mods = lora_modules(cfg)
    for mod in mods:
        out_f, in_f = W[mod + ".weight"].shape
        ad.A[mod] = (0.1 * torch.randn(R, in_f, generator=g, dtype=DT)).float().to(DT)
        ad.B[mod] = (0.1 * torch.randn(out_f, R, generator=g, dtype=DT)).float().to(DT)
    if use_dora:
        for mod in mods:
            n = dora_weight_norm(W[mod + ".weight"], ad.A[mod], ad.B[mod], ad.scaling)
            pert = 1 + 0.05 * torch.randn(n.shape, generator=g, dtype=DT)
            ad.m[mod] = (n * pert).float().to(DT)
    for _, t in ad.params():
        t.requires_grad_(True)
    return ad


def adapter_config(base, use_rslora, use_dora):
    """adapter_config.json as peft (0.17) LoraConfig.save_pretrained writes it."""
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": f"test/fixtures/models/{base}",
        "bias": "none",
        "corda_config": None,
        "eva_config": None,
        "exclude_modules": None,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": ALPHA,
        "lora_bias": False,
        "lora_dropout": 0.0,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "peft_version": PEFT_VERSION,
        "qalora_group_size": 16,
        "r": R,
        "rank_pattern": {},
        "revision": None,
        "target_modules": TARGETS,
        "target_parameters": None,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": None,
        "use_dora": use_dora,
        "use_qalora": False,
        "use_rslora": use_rslora,
    }


def write_adapter_folder(case, base, ad, use_rslora):
    folder = os.path.join(ADAPTERS_DIR, case)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        # peft writes json.dumps(indent=2, sort_keys=True) with no trailing newline
        f.write(json.dumps(adapter_config(base, use_rslora, ad.use_dora), indent=2, sort_keys=True))
    st.save({k: f32(v) for k, v in ad.params()}, os.path.join(folder, "adapter_model.safetensors"), {"format": "pt"})
    return folder


def loss_and_grads(cfg, W, ad, ids, mask, labels):
    for _, t in ad.params():
        t.grad = None
    logits = forward(cfg, W, ids, mask, ad)
    loss = causal_lm_loss(logits, labels)
    loss.backward()
    return logits, loss, {k: t.grad.detach().clone() for k, t in ad.params()}


def main():
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    ids, mask, labels = batch()
    for case, (base, seed, use_rslora, use_dora) in CASES.items():
        base_dir = os.path.join(MODELS_DIR, base)
        cfg, W = load_model(base_dir)
        ad = make_adapter(cfg, W, seed, use_rslora, use_dora)
        logits, loss, grads = loss_and_grads(cfg, W, ad, ids, mask, labels)
        folder = write_adapter_folder(case, base, ad, use_rslora)

        tensors = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        tensors["logits"] = f32(logits)
        tensors["loss"] = f32(loss)
        for k, t in ad.params():
            tensors[k] = f32(t)
            tensors["grad." + k] = f32(grads[k])
        meta = {
            "case": case,
            "model_dir": f"test/fixtures/models/{base}",
            "adapter_dir": f"test/fixtures/golden/adapters/{case}",
            "r": R,
            "lora_alpha": ALPHA,
            "scaling": ad.scaling,
            "use_rslora": use_rslora,
            "use_dora": use_dora,
            "target_modules": TARGETS,
            "loss": float(loss),
            "grad_norms": {k: float(torch.linalg.norm(v)) for k, v in grads.items()},
        }
        if case == "llama-mha":
            merged, _ = apply_adapter.merged_logits(base_dir, folder, ids, mask)
            diff = float((merged - logits).abs().max())
            assert diff < 1e-10, f"merged vs unmerged logits differ by {diff}"
            tensors["merged_logits"] = f32(merged)
            meta["merged_vs_unmerged_max_abs_diff_f64"] = diff
        st.save(tensors, os.path.join(GOLDEN_DIR, f"lora-{case}.safetensors"), {"format": "pt"})
        write_json(os.path.join(GOLDEN_DIR, f"lora-{case}.json"), meta)
        print(f"lora-{case}: loss {float(loss):.10f}, {len(grads)} grads, scaling {ad.scaling}")


if __name__ == "__main__":
    main()
