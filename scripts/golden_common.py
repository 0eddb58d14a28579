"""Independent float64 reference of the Llama-family causal LM (llama / mistral / qwen2 / qwen3) with
LoRA / rsLoRA / DoRA adapters, written by hand from /work/shared/REFERENCE.md, following
transformers' modeling_llama.py / modeling_qwen2.py / modeling_qwen3.py / modeling_mistral.py and
peft's tuners/lora/{layer,dora}.py. It reads HF folders through scripts/st.py.

What is here: config parsing, RoPE (default and rope_type "llama3"), RMSNorm, GQA attention with causal +
key-padding mask, SwiGLU MLP, tied / untied lm_head, HF's causal-LM loss, LoRA application, the fixed
input batch every golden file uses, and small helpers shared by scripts/golden_*.py.
What is not here: KV cache / generation, sliding-window attention (fixtures are far shorter than any window),
dropout (all fixtures use lora_dropout 0), 4-bit quantization.

Everything computes in float64; weights stored as F32/BF16 are upcast exactly. Golden files store float32.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(REPO, "test", "fixtures", "models")
GOLDEN_DIR = os.path.join(REPO, "test", "fixtures", "golden")
ADAPTERS_DIR = os.path.join(GOLDEN_DIR, "adapters")

DT = torch.float64
IGNORE = -100

LINEARS = [
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "o_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
    ("mlp", "down_proj"),
]

# ---------------------------------------------------------------------------------------------------------
# The fixed batch of every forward / LoRA golden file: B=2, T=8, row 1 right-padded (last 3 positions).
# Token ids: bos=1, eos=2, pad=0 (the tiny configs' ids).
INPUT_IDS = [
    [1, 17, 42, 99, 5, 63, 120, 7],
    [1, 88, 23, 64, 2, 0, 0, 0],
]
ATTENTION_MASK = [
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 0, 0, 0],
]
INPUT_IDS_FULL = [
    [1, 34, 90, 11, 76, 3, 127, 58],
    [1, 12, 12, 45, 101, 66, 9, 2],
]


def batch():
    ids = torch.tensor(INPUT_IDS, dtype=torch.int64)
    mask = torch.tensor(ATTENTION_MASK, dtype=torch.int64)
    labels = ids.clone()
    labels[mask == 0] = IGNORE
    return ids, mask, labels


# ---------------------------------------------------------------------------------------------------------
class Config:
    """The fields of an HF config.json the forward needs."""

    def __init__(self, d):
        self.raw = d
        self.model_type = d["model_type"]
        if self.model_type not in ("llama", "mistral", "qwen2", "qwen3"):
            raise ValueError(f"unsupported model_type {self.model_type}")
        self.hidden = d["hidden_size"]
        self.inter = d["intermediate_size"]
        self.layers = d["num_hidden_layers"]
        self.heads = d["num_attention_heads"]
        self.kv_heads = d.get("num_key_value_heads") or self.heads
        self.head_dim = d.get("head_dim") or self.hidden // self.heads
        self.eps = d["rms_norm_eps"]
        self.theta = d.get("rope_theta", 10000.0)
        self.rope_scaling = d.get("rope_scaling")
        self.vocab = d["vocab_size"]
        self.tie = bool(d.get("tie_word_embeddings", False))
        # Qwen2 always has q/k/v biases (modeling_qwen2.py hard-codes bias=True); llama/qwen3 via attention_bias.
        self.qkv_bias = self.model_type == "qwen2" or bool(d.get("attention_bias", False))
        self.o_bias = self.model_type != "qwen2" and bool(d.get("attention_bias", False))
        self.qk_norm = self.model_type == "qwen3"


def load_model(folder):
    """(Config, {hf_name: float64 tensor}) of an HF folder (single file or sharded; F32 or BF16)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    raw = st.load_model_dir(folder)
    return cfg, {k: v.to(DT) for k, v in raw.items()}


# ---------------------------------------------------------------------------------------------------------
def rope_inv_freq(cfg):
    """inv_freq [head_dim/2] (transformers modeling_rope_utils: _compute_default / _compute_llama3_parameters)."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, d, 2, dtype=DT) / d))
    rs = cfg.rope_scaling
    if rs is None:
        return inv_freq
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv_freq
    if kind != "llama3":
        raise ValueError(f"rope_type {kind} not implemented in the reference")
    factor = rs["factor"]
    low = rs["low_freq_factor"]
    high = rs["high_freq_factor"]
    old_ctx = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_ctx / low
    high_freq_wavelen = old_ctx / high
    wavelen = 2 * math.pi / inv_freq
    # long wavelengths (low frequencies) are divided by factor; short ones kept; the band between is blended
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_cos_sin(cfg, position_ids):
    """cos, sin [B, T, head_dim] for integer position_ids [B, T]; emb = cat(freqs, freqs)."""
    freqs = position_ids.to(DT)[..., None] * rope_inv_freq(cfg)[None, None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    """x [B, heads, T, D]; cos/sin [B, T, D]."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


def rms_norm(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


# ---------------------------------------------------------------------------------------------------------
class Adapter:
    """LoRA weights per target module name (e.g. 'model.layers.0.self_attn.q_proj'):
    A [r, in], B [out, r], scaling, and for DoRA the magnitude vector m [out]."""

    def __init__(self, scaling, use_dora=False):
        self.scaling = scaling
        self.use_dora = use_dora
        self.A = {}
        self.B = {}
        self.m = {}
        # DoRA only: norms to use instead of ||W + s*B@A|| (finite-difference checks hold the detached norm fixed)
        self.fixed_norm = None

    def params(self):
        """(peft_key, tensor) pairs in a fixed order; the tensors are the ones used by forward()."""
        out = []
        for mod in sorted(self.A):
            out.append((peft_key(mod, "lora_A.weight"), self.A[mod]))
            out.append((peft_key(mod, "lora_B.weight"), self.B[mod]))
            if self.use_dora:
                out.append((peft_key(mod, "lora_magnitude_vector"), self.m[mod]))
        return out


def peft_key(module, suffix):
    """PEFT's saved key: 'base_model.model.' + module path + suffix, with no adapter name."""
    return f"base_model.model.{module}.{suffix}"


def lora_modules(cfg):
    return [f"model.layers.{i}.{blk}.{name}" for i in range(cfg.layers) for blk, name in LINEARS]


def dora_weight_norm(W, A, B, scaling):
    """||W + s*B@A|| per output row (peft dora.py get_weight_norm, dim=1), detached as peft does."""
    return torch.linalg.norm(W + scaling * (B @ A), dim=1).detach()


def linear(W, name, x, adapter=None):
    """HF nn.Linear (y = x W^T + b) plus the adapter's contribution for this module, if any."""
    w = W[name + ".weight"]
    base = x @ w.T
    b = W.get(name + ".bias")
    y = base + b if b is not None else base
    if adapter is not None and name in adapter.A:
        A, B, s = adapter.A[name], adapter.B[name], adapter.scaling
        lora = (x @ A.T) @ B.T
        if adapter.use_dora:
            # peft dora.py: result = base(x) + (m/n - 1) * (x W^T) + (m/n) * s * B(A(x)), n detached;
            # base_result excludes the bias.
            if adapter.fixed_norm is not None:
                n = adapter.fixed_norm[name]
            else:
                n = dora_weight_norm(w, A, B, s)
            scale = adapter.m[name] / n
            y = y + (scale - 1) * base + scale * lora * s
        else:
            y = y + s * lora
    return y


def forward(cfg, W, input_ids, attention_mask=None, adapter=None, position_ids=None):
    """Logits [B, T, V] in float64. attention_mask [B, T] (1 = token, 0 = padding) masks *keys*
    (HF adds the dtype minimum); the causal mask is always applied. position_ids default 0..T-1."""
    Bsz, T = input_ids.shape
    H, KV, D = cfg.heads, cfg.kv_heads, cfg.head_dim
    if position_ids is None:
        position_ids = torch.arange(T, dtype=torch.int64)[None].expand(Bsz, T)
    cos, sin = rope_cos_sin(cfg, position_ids)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()[None].expand(Bsz, T, T)
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, :]
    bias = torch.zeros(Bsz, 1, T, T, dtype=DT).masked_fill(~allowed[:, None], float("-inf"))

    x = W["model.embed_tokens.weight"][input_ids]
    for i in range(cfg.layers):
        p = f"model.layers.{i}"
        h = rms_norm(x, W[f"{p}.input_layernorm.weight"], cfg.eps)
        q = linear(W, f"{p}.self_attn.q_proj", h, adapter).view(Bsz, T, H, D)
        k = linear(W, f"{p}.self_attn.k_proj", h, adapter).view(Bsz, T, KV, D)
        v = linear(W, f"{p}.self_attn.v_proj", h, adapter).view(Bsz, T, KV, D)
        if cfg.qk_norm:  # Qwen3: RMSNorm over head_dim, before RoPE
            q = rms_norm(q, W[f"{p}.self_attn.q_norm.weight"], cfg.eps)
            k = rms_norm(k, W[f"{p}.self_attn.k_norm.weight"], cfg.eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # GQA: query head j uses kv head j // (H/KV) (transformers repeat_kv)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D) + bias
        attn = torch.softmax(scores, dim=-1) @ v  # [B, H, T, D]
        attn = attn.transpose(1, 2).reshape(Bsz, T, H * D)
        x = x + linear(W, f"{p}.self_attn.o_proj", attn, adapter)
        h = rms_norm(x, W[f"{p}.post_attention_layernorm.weight"], cfg.eps)
        g = linear(W, f"{p}.mlp.gate_proj", h, adapter)
        u = linear(W, f"{p}.mlp.up_proj", h, adapter)
        x = x + linear(W, f"{p}.mlp.down_proj", torch.nn.functional.silu(g) * u, adapter)
    x = rms_norm(x, W["model.norm.weight"], cfg.eps)
    head = W["model.embed_tokens.weight"] if cfg.tie else W["lm_head.weight"]
    return x @ head.T


def token_logps(logits, input_ids):
    """logp[b, t] = log softmax(logits[b, t-1])[input_ids[b, t]] for t >= 1; column 0 is 0 (no prediction)."""
    lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
    return torch.cat([torch.zeros_like(lp[:, :1]), lp], dim=1)


def causal_lm_loss(logits, labels):
    """transformers ForCausalLMLoss: shift, ignore -100, mean over the counted tokens."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    keep = shift_labels != IGNORE
    lp = torch.log_softmax(shift_logits[keep], dim=-1)
    return -lp.gather(-1, shift_labels[keep][:, None]).mean()


# ---------------------------------------------------------------------------------------------------------
def f32(t):
    return t.detach().to(torch.float32).contiguous()


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def relerr(a, b):
    """Normwise relative error ||a - b|| / max(||b||, tiny)."""
    return float(torch.linalg.norm((a - b).flatten()) / max(float(torch.linalg.norm(b.flatten())), 1e-300))
