"""Writes the tiny deterministic Hugging Face checkpoints under test/fixtures/models/<name>/:
config.json (as transformers' save_pretrained writes it: indent 2, sorted keys, trailing newline),
generation_config.json, and model.safetensors (or 2 shards + model.safetensors.index.json).

Run: /usr/bin/python3 scripts/make_tiny_models.py     (then the scripts/golden_*.py, see test/fixtures/README.md)

Shapes: vocab 128, hidden 64, 2 layers, head_dim 16, intermediate 96. Weights are drawn from a seeded
torch.Generator in the fixed order of `tensor_specs` (names sorted as listed there):
  linears and embeddings ~ N(0, 0.02), except q_proj/k_proj ~ N(0, QK_STD) so that attention is far from
  uniform and RoPE / causal / padding masks change the logits by much more than the test tolerance;
  every RMSNorm weight = 1 + 0.1 N(0, 1) (so norms matter); biases = 0.1 N(0, 1).
What is not here: the golden values (scripts/golden_*.py) and 4-bit checkpoints.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from golden_common import MODELS_DIR, write_json  # noqa: E402

TRANSFORMERS_VERSION = "4.51.3"
VOCAB, HIDDEN, LAYERS, HEAD_DIM, INTER = 128, 64, 2, 16, 96
STD = 0.02
QK_STD = 0.15
BOS, EOS, PAD = 1, 2, 0


def llama_config(heads=4, kv_heads=4, tie=False, rope_scaling=None, max_pos=128, dtype="float32"):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "max_position_embeddings": max_pos,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": kv_heads,
        "pad_token_id": PAD,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": rope_scaling,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tie,
        "torch_dtype": dtype,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def mistral_config():
    return {
        "architectures": ["MistralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "max_position_embeddings": 128,
        "model_type": "mistral",
        "num_attention_heads": 4,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": 2,
        "pad_token_id": PAD,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,  # as Mistral-7B-v0.1; far longer than any fixture sequence
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def qwen2_config():
    # Qwen2 has q/k/v biases unconditionally (no attention_bias key in real Qwen2/2.5 configs).
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "max_position_embeddings": 128,
        "max_window_layers": LAYERS,
        "model_type": "qwen2",
        "num_attention_heads": 4,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": 2,
        "pad_token_id": PAD,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }


def qwen3_config():
    # 8 heads x head_dim 16 = 128 != hidden 64, as in real Qwen3 (e.g. 0.6B: 16 x 128 vs 1024):
    # an engine that derives head_dim from hidden/heads fails on this fixture.
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "max_position_embeddings": 128,
        "max_window_layers": LAYERS,
        "model_type": "qwen3",
        "num_attention_heads": 8,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": 4,
        "pad_token_id": PAD,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }


# original_max_position_embeddings 32 with rope_theta 10000 and head_dim 16 puts the 8 frequencies in all
# three llama3 bands: wavelength 2*pi (< 32/4 = 8: kept), 19.9 (between 8 and 32: blended), >= 62.8 (/ factor).
LLAMA3_ROPE = {
    "factor": 8.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 32,
    "rope_type": "llama3",
}

# name -> (config, seed); llama-bf16 and llama-sharded are llama-gqa's weights stored differently.
VARIANTS = {
    "llama-mha": (llama_config(4, 4), 1001),
    "llama-gqa": (llama_config(4, 2), 1002),
    "llama-tied": (llama_config(4, 2, tie=True), 1003),
    "llama3-rope": (llama_config(4, 2, rope_scaling=LLAMA3_ROPE, max_pos=256), 1004),
    "qwen2": (qwen2_config(), 1005),
    "qwen3": (qwen3_config(), 1006),
    "mistral": (mistral_config(), 1007),
}


def tensor_specs(cfg):
    """[(hf_name, shape, kind)] in the draw order. kind: linear | qk | embed | norm | bias."""
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", HIDDEN // H)
    C, F = cfg["hidden_size"], cfg["intermediate_size"]
    qwen2, qwen3 = cfg["model_type"] == "qwen2", cfg["model_type"] == "qwen3"
    specs = [("model.embed_tokens.weight", (cfg["vocab_size"], C), "embed")]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        specs += [
            (f"{p}.input_layernorm.weight", (C,), "norm"),
            (f"{p}.self_attn.q_proj.weight", (H * D, C), "qk"),
            (f"{p}.self_attn.k_proj.weight", (KV * D, C), "qk"),
            (f"{p}.self_attn.v_proj.weight", (KV * D, C), "linear"),
            (f"{p}.self_attn.o_proj.weight", (C, H * D), "linear"),
        ]
        if qwen2:
            specs += [
                (f"{p}.self_attn.q_proj.bias", (H * D,), "bias"),
                (f"{p}.self_attn.k_proj.bias", (KV * D,), "bias"),
                (f"{p}.self_attn.v_proj.bias", (KV * D,), "bias"),
            ]
        if qwen3:
            specs += [
                (f"{p}.self_attn.q_norm.weight", (D,), "norm"),
                (f"{p}.self_attn.k_norm.weight", (D,), "norm"),
            ]
        specs += [
            (f"{p}.post_attention_layernorm.weight", (C,), "norm"),
            (f"{p}.mlp.gate_proj.weight", (F, C), "linear"),
            (f"{p}.mlp.up_proj.weight", (F, C), "linear"),
            (f"{p}.mlp.down_proj.weight", (C, F), "linear"),
        ]
    specs.append(("model.norm.weight", (C,), "norm"))
    if not cfg["tie_word_embeddings"]:
        specs.append(("lm_head.weight", (cfg["vocab_size"], C), "linear"))
    return specs


def make_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind in tensor_specs(cfg):
        z = torch.randn(shape, generator=g, dtype=torch.float64)
        if kind == "norm":
            t = 1.0 + 0.1 * z
        elif kind == "bias":
            t = 0.1 * z
        elif kind == "qk":
            t = QK_STD * z
        else:
            t = STD * z
        out[name] = t.to(torch.float32)
    return out


def generation_config():
    return {
        "_from_model_config": True,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "transformers_version": TRANSFORMERS_VERSION,
    }


def write_folder(name, cfg, tensors, shards=1):
    folder = os.path.join(MODELS_DIR, name)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    write_json(os.path.join(folder, "config.json"), cfg)
    write_json(os.path.join(folder, "generation_config.json"), generation_config())
    meta = {"format": "pt"}
    if shards == 1:
        st.save(tensors, os.path.join(folder, "model.safetensors"), meta)
        return
    # Split by layer like transformers' shard_checkpoint: embeddings + layer 0 | layer 1 + norm + lm_head.
    names = [n for n, _, _ in tensor_specs(cfg)]
    half = next(i for i, n in enumerate(names) if n.startswith("model.layers.1."))
    groups = [names[:half], names[half:]]
    weight_map = {}
    for k, group in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        st.save({n: tensors[n] for n in group}, os.path.join(folder, fname), meta)
        for n in group:
            weight_map[n] = fname
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(os.path.join(folder, "model.safetensors.index.json"), index)


def main():
    for name, (cfg, seed) in VARIANTS.items():
        w = make_weights(cfg, seed)
        write_folder(name, cfg, w)
        if name == "llama-gqa":
            bf16 = {k: v.to(torch.bfloat16) for k, v in w.items()}  # round to nearest even
            write_folder("llama-bf16", llama_config(4, 2, dtype="bfloat16"), bf16)
            write_folder("llama-sharded", cfg, w, shards=2)
    for name in sorted(os.listdir(MODELS_DIR)):
        folder = os.path.join(MODELS_DIR, name)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{name:16s} {size / 1024:7.1f} KiB")


if __name__ == "__main__":
    main()
