"""Golden logits and causal-LM loss of every tiny checkpoint: test/fixtures/golden/forward-<model>.{safetensors,json}.

Run after scripts/make_tiny_models.py: /usr/bin/python3 scripts/golden_forward.py
Inputs: the fixed batch of golden_common (B=2, T=8, row 1 right-padded over its last 3 positions), labels =
input_ids with -100 at padded positions, position ids 0..T-1. For llama-mha also an unpadded batch (*_full).
Computed in float64 by golden_common.forward from the stored weights (BF16 upcast exactly), stored as F32.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from golden_common import (  # noqa: E402
    GOLDEN_DIR,
    INPUT_IDS_FULL,
    MODELS_DIR,
    batch,
    causal_lm_loss,
    f32,
    forward,
    load_model,
    write_json,
)

MODELS = [
    "llama-mha",
    "llama-gqa",
    "llama-tied",
    "llama3-rope",
    "qwen2",
    "qwen3",
    "mistral",
    "llama-bf16",
    "llama-sharded",
]


def main():
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    ids, mask, labels = batch()
    for name in MODELS:
        cfg, W = load_model(os.path.join(MODELS_DIR, name))
        logits = forward(cfg, W, ids, mask)
        loss = causal_lm_loss(logits, labels)
        tensors = {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "logits": f32(logits),
            "loss": f32(loss),
        }
        meta = {
            "model": name,
            "model_dir": f"test/fixtures/models/{name}",
            "loss": float(loss),
            "num_label_tokens": int((labels[:, 1:] != -100).sum()),
        }
        if name == "llama-mha":
            ids_full = torch.tensor(INPUT_IDS_FULL, dtype=torch.int64)
            logits_full = forward(cfg, W, ids_full)
            loss_full = causal_lm_loss(logits_full, ids_full)
            tensors.update(input_ids_full=ids_full, logits_full=f32(logits_full), loss_full=f32(loss_full))
            meta["loss_full"] = float(loss_full)
        st.save(tensors, os.path.join(GOLDEN_DIR, f"forward-{name}.safetensors"), {"format": "pt"})
        write_json(os.path.join(GOLDEN_DIR, f"forward-{name}.json"), meta)
        print(f"forward-{name}: loss {float(loss):.10f}")


if __name__ == "__main__":
    main()
