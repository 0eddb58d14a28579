"""Self-checks of the golden reference: run after the generators; exits 1 on any failure.
    /usr/bin/python3 scripts/golden_selfcheck.py

What it checks (each line printed with its measured error):
 1. safetensors files: header alignment, round trip, BF16 = round-to-nearest-even of llama-gqa's F32 bits
    (computed with integer arithmetic, not torch's cast), shards == single file.
 2. The forward against a second, separately written implementation in Meta's original Llama layout:
    complex-number RoPE on interleaved pairs with the q/k weights un-permuted (the inverse of transformers'
    convert_llama_weights_to_hf permute), Meta's scalar-loop llama3 frequency scaling, per-head loops,
    per-row attention over the row's own tokens only (no padding at all).
 3. GQA == MHA with the k/v heads repeated; tied == untied with lm_head = embed_tokens.
 4. RoPE is relative: shifting all position ids by a constant leaves the logits unchanged.
 5. Loss == torch.nn.functional.cross_entropy(ignore_index=-100) on the shifted logits.
 6. The stored golden gradients (LoRA, rsLoRA, DoRA incl. magnitudes, DPO sigmoid/cdpo/ipo/hinge, ORPO) ==
    central finite differences of the float64 loss on single elements (DoRA: the norm held fixed, as
    peft detaches it); the stored golden losses == a fresh recomputation.
 7. DPO/ORPO log-probs of the concatenated padded batch == each sequence run alone.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import apply_adapter  # noqa: E402
import golden_prefs as gp  # noqa: E402
from golden_common import (  # noqa: E402
    ADAPTERS_DIR,
    DT,
    GOLDEN_DIR,
    INPUT_IDS_FULL,
    MODELS_DIR,
    REPO,
    Config,
    batch,
    causal_lm_loss,
    dora_weight_norm,
    forward,
    load_model,
    relerr,
    token_logps,
)

FAILURES = []


def check(name, err, tol):
    ok = err <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {err:.3e} (tol {tol:.0e})")
    if not ok:
        FAILURES.append(name)


# ------------------------------------------------------------------------------------------------ 1
def check_files():
    walk = list(os.walk(MODELS_DIR)) + list(os.walk(GOLDEN_DIR))  # only the folders these scripts write
    for root, _, files in sorted(walk):
        for f in sorted(files):
            if f.endswith(".safetensors"):
                path = os.path.join(root, f)
                with open(path, "rb") as fh:
                    raw = fh.read()
                (n,) = struct.unpack("<Q", raw[:8])
                t, meta = st.load(path, with_metadata=True)
                bad = (8 + n) % 8 != 0 or st.serialize(t, meta) != raw
                check(f"{os.path.relpath(path, REPO)}: 8-byte aligned header, byte-exact round trip", float(bad), 0)
    gqa = st.load(os.path.join(MODELS_DIR, "llama-gqa", "model.safetensors"))
    bf = st.load(os.path.join(MODELS_DIR, "llama-bf16", "model.safetensors"))
    worst = 0
    for k, v in gqa.items():
        bits = v.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF  # round to nearest, ties to even
        got = bf[k].view(torch.int16).to(torch.int64) & 0xFFFF
        worst = max(worst, int((rounded != got).sum()))
    check("llama-bf16 = RNE(llama-gqa) bit patterns (count of mismatches)", worst, 0)
    sh = st.load_model_dir(os.path.join(MODELS_DIR, "llama-sharded"))
    check("llama-sharded tensors == llama-gqa", float(sum(int((sh[k] != v).sum()) for k, v in gqa.items())
                                                      + abs(len(sh) - len(gqa))), 0)


# ------------------------------------------------------------------------------------------------ 2
def meta_freqs(cfg):
    """Meta llama3 `apply_scaling`, a scalar loop (a different formulation from golden_common's torch.where)."""
    D = cfg.head_dim
    freqs = [1.0 / (cfg.theta ** (i / D)) for i in range(0, D, 2)]
    rs = cfg.rope_scaling
    if not rs:
        return freqs
    fac, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < old / hi:
            out.append(f)
        elif wl > old / lo:
            out.append(f / fac)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append((1 - s) * f / fac + s * f)
    return out


def unpermute(w, heads, D):
    """Inverse of transformers' convert_llama_weights_to_hf permute(w) =
    w.view(h, D/2, 2, C).transpose(1, 2).reshape(h*D, C): back to Meta's interleaved-pair layout."""
    C = w.shape[1]
    return w.view(heads, 2, D // 2, C).transpose(1, 2).reshape(heads * D, C)


def meta_forward_row(cfg, W, ids):
    """Logits [T, V] for ONE unpadded sequence, Meta-style: complex RoPE on interleaved pairs."""
    T = len(ids)
    H, KV, D = cfg.heads, cfg.kv_heads, cfg.head_dim
    freqs = torch.tensor(meta_freqs(cfg), dtype=DT)
    rot = torch.polar(torch.ones(T, D // 2, dtype=DT), torch.arange(T, dtype=DT)[:, None] * freqs[None])

    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.eps) * w

    def rope(x):  # x [T, heads, D] interleaved pairs
        xc = torch.view_as_complex(x.reshape(T, x.shape[1], D // 2, 2).contiguous())
        return torch.view_as_real(xc * rot[:, None]).reshape(T, x.shape[1], D)

    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(cfg.layers):
        p = f"model.layers.{i}.self_attn."
        h = norm(x, W[f"model.layers.{i}.input_layernorm.weight"])
        wq, wk = unpermute(W[p + "q_proj.weight"], H, D), unpermute(W[p + "k_proj.weight"], KV, D)
        q, k, v = h @ wq.T, h @ wk.T, h @ W[p + "v_proj.weight"].T
        if cfg.qkv_bias:
            q = q + unpermute(W[p + "q_proj.bias"][:, None], H, D)[:, 0]
            k = k + unpermute(W[p + "k_proj.bias"][:, None], KV, D)[:, 0]
            v = v + W[p + "v_proj.bias"]
        q, k, v = q.view(T, H, D), k.view(T, KV, D), v.view(T, KV, D)
        if cfg.qk_norm:  # the norm weight follows the same permutation as the head dims
            q = norm(q, unpermute(W[p + "q_norm.weight"][:, None], 1, D)[:, 0])
            k = norm(k, unpermute(W[p + "k_norm.weight"][:, None], 1, D)[:, 0])
        q, k = rope(q), rope(k)
        heads = []
        for j in range(H):
            kv = j // (H // KV)
            out = torch.empty(T, D, dtype=DT)
            for t in range(T):  # query t attends to keys 0..t
                s = (k[: t + 1, kv] @ q[t, j]) / math.sqrt(D)
                out[t] = torch.softmax(s, 0) @ v[: t + 1, kv]
            heads.append(out)
        x = x + torch.cat(heads, dim=1) @ W[p + "o_proj.weight"].T
        h = norm(x, W[f"model.layers.{i}.post_attention_layernorm.weight"])
        m = f"model.layers.{i}.mlp."
        a = h @ W[m + "gate_proj.weight"].T
        x = x + ((a * torch.sigmoid(a)) * (h @ W[m + "up_proj.weight"].T)) @ W[m + "down_proj.weight"].T
    x = norm(x, W["model.norm.weight"])
    return x @ (W["model.embed_tokens.weight"] if cfg.tie else W["lm_head.weight"]).T


def check_forward_vs_meta():
    ids, mask, _ = batch()
    for name in ["llama-mha", "llama-gqa", "llama-tied", "llama3-rope", "qwen2", "qwen3", "mistral", "llama-bf16"]:
        cfg, W = load_model(os.path.join(MODELS_DIR, name))
        gold = st.load(os.path.join(GOLDEN_DIR, f"forward-{name}.safetensors"))
        worst = 0.0
        for b in range(ids.shape[0]):
            L = int(mask[b].sum())
            ref = meta_forward_row(cfg, W, ids[b, :L].tolist())
            worst = max(worst, float((gold["logits"][b, :L].to(DT) - ref).abs().max()))
        check(f"forward-{name} golden logits vs Meta-layout implementation (real tokens)", worst, 1e-6)
        logits = forward(cfg, W, ids, mask)
        check(f"forward-{name} golden logits == fresh recomputation", float((gold["logits"].to(DT) - logits).abs().max()), 1e-6)
    cfg = Config(json.load(open(os.path.join(MODELS_DIR, "llama3-rope", "config.json"))))
    base = [1.0 / (cfg.theta ** (i / cfg.head_dim)) for i in range(0, cfg.head_dim, 2)]
    scaled = meta_freqs(cfg)
    bands = {"kept": 0, "blended": 0, "divided": 0}
    for f0, f1 in zip(base, scaled):
        bands["kept" if f1 == f0 else "divided" if abs(f1 - f0 / 8) < 1e-18 else "blended"] += 1
    print(f"     llama3-rope frequency bands: {bands}")
    check("llama3-rope exercises all three bands (count of empty bands)", float(sum(v == 0 for v in bands.values())), 0)


# ------------------------------------------------------------------------------------------------ 3-5
def check_equivalences():
    ids, mask, labels = batch()
    cfg, W = load_model(os.path.join(MODELS_DIR, "llama-gqa"))
    rep = cfg.heads // cfg.kv_heads
    W2 = dict(W)
    for i in range(cfg.layers):
        for n in ("k_proj", "v_proj"):
            key = f"model.layers.{i}.self_attn.{n}.weight"
            w = W[key].view(cfg.kv_heads, cfg.head_dim, -1)
            W2[key] = w.repeat_interleave(rep, dim=0).reshape(cfg.heads * cfg.head_dim, -1)
    cfg2 = Config(dict(cfg.raw, num_key_value_heads=cfg.heads))
    check("GQA == MHA with repeated k/v heads", float((forward(cfg, W, ids, mask) - forward(cfg2, W2, ids, mask)).abs().max()), 1e-12)

    cfg, W = load_model(os.path.join(MODELS_DIR, "llama-tied"))
    W3 = dict(W, **{"lm_head.weight": W["model.embed_tokens.weight"]})
    cfg3 = Config(dict(cfg.raw, tie_word_embeddings=False))
    check("tied == untied with lm_head = embed_tokens", float((forward(cfg, W, ids, mask) - forward(cfg3, W3, ids, mask)).abs().max()), 0)

    cfg, W = load_model(os.path.join(MODELS_DIR, "llama-mha"))
    full = torch.tensor(INPUT_IDS_FULL)
    pos = torch.arange(8)[None].expand(2, 8)
    check("RoPE relative: positions +5 leave logits unchanged",
          float((forward(cfg, W, full) - forward(cfg, W, full, position_ids=pos + 5)).abs().max()), 1e-12)

    logits = forward(cfg, W, ids, mask)
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, cfg.vocab), labels[:, 1:].reshape(-1), ignore_index=-100)
    check("causal_lm_loss == F.cross_entropy(ignore_index=-100)", abs(float(ce - causal_lm_loss(logits, labels))), 1e-14)
    gold = json.load(open(os.path.join(GOLDEN_DIR, "forward-llama-mha.json")))
    check("forward-llama-mha loss_full recomputed", abs(gold["loss_full"] - float(causal_lm_loss(forward(cfg, W, full), full))), 1e-12)


# ------------------------------------------------------------------------------------------------ 6
def fd_check(label, loss_fn, params, stored_grads, picks, h=1e-5, tol=1e-6):
    """Central differences of loss_fn() on chosen elements of params (dict key -> leaf tensor) vs stored grads.
    The error is relative to the gradient tensor's max |value| (stored grads are F32)."""
    worst = 0.0
    for key, idx in picks:
        t = params[key]
        with torch.no_grad():
            old = t[idx].item()
            t[idx] = old + h
            up = float(loss_fn())
            t[idx] = old - h
            down = float(loss_fn())
            t[idx] = old
        fd = (up - down) / (2 * h)
        g = stored_grads[key]
        worst = max(worst, abs(fd - float(g[idx])) / float(g.abs().max()))
    check(f"{label}: golden grads vs finite differences ({len(picks)} elements)", worst, tol)


def picks_for(keys):
    """A few elements spread over modules and tensors."""
    chosen = [k for k in keys if ".layers.0.self_attn.q_proj." in k or ".layers.1.mlp.down_proj." in k
              or ".layers.1.self_attn.v_proj." in k]
    return [(k, (1, 2) if k.endswith("weight") else (3,)) for k in chosen]


def adapter_from_golden(case, gold):
    acfg, mods = apply_adapter.read_adapter(os.path.join(ADAPTERS_DIR, case))
    ad = apply_adapter.as_adapter(acfg, mods)
    params = dict(ad.params())
    worst = max(float((gold[k].to(DT) - t).abs().max()) for k, t in params.items())
    check(f"lora-{case}: adapter folder tensors == golden file tensors", worst, 0)
    return ad, params


def check_lora_grads():
    ids, mask, labels = batch()
    for case in ["llama-mha", "llama-gqa", "llama-tied", "qwen2", "rslora", "dora"]:
        meta = json.load(open(os.path.join(GOLDEN_DIR, f"lora-{case}.json")))
        gold = st.load(os.path.join(GOLDEN_DIR, f"lora-{case}.safetensors"))
        cfg, W = load_model(os.path.join(REPO, meta["model_dir"]))
        ad, params = adapter_from_golden(case, gold)
        if ad.use_dora:  # hold the detached norm fixed at the unperturbed point
            ad.fixed_norm = {m: dora_weight_norm(W[m + ".weight"], ad.A[m], ad.B[m], ad.scaling) for m in ad.A}
        loss_fn = lambda: causal_lm_loss(forward(cfg, W, ids, mask, ad), labels)  # noqa: E731
        check(f"lora-{case}: stored loss == recomputed", abs(float(loss_fn()) - meta["loss"]), 1e-12)
        grads = {k[len("grad."):]: v.to(DT) for k, v in gold.items() if k.startswith("grad.")}
        check(f"lora-{case}: one grad per adapter tensor", float(set(grads) != set(params)), 0)
        fd_check(f"lora-{case}", loss_fn, params, grads, picks_for(list(params)))


def check_prefs():
    d = gp.data_tensors()
    B = len(gp.PROMPTS)
    ids, mask, comp = d["concat_input_ids"], d["concat_attention_mask"], d["concat_completion_mask"]
    cfg, W = load_model(os.path.join(MODELS_DIR, gp.BASE))
    dpo = st.load(os.path.join(GOLDEN_DIR, "dpo-golden.safetensors"))
    orpo = st.load(os.path.join(GOLDEN_DIR, "orpo-golden.safetensors"))
    acfg, mods = apply_adapter.read_adapter(os.path.join(ADAPTERS_DIR, gp.ADAPTER))
    ad = apply_adapter.as_adapter(acfg, mods)
    params = dict(ad.params())
    with torch.no_grad():
        ref = forward(cfg, W, ids, mask)
    r_sum, r_avg, _ = gp.seq_logps(ref, ids, comp)

    # each sequence alone (no padding, no batch) gives the same completion log-prob sums
    rows = [p + c for p, c in zip(gp.PROMPTS, gp.CHOSEN)] + [p + r for p, r in zip(gp.PROMPTS, gp.REJECTED)]
    plens = [len(p) for p in gp.PROMPTS] * 2
    worst = 0.0
    for i, row in enumerate(rows):
        one = torch.tensor([row])
        lp = token_logps(forward(cfg, W, one, adapter=ad), one)[0, plens[i]:].sum()
        worst = max(worst, abs(float(lp) - float(dpo["policy_chosen_logps" if i < B else "policy_rejected_logps"][i % B])))
    check("DPO policy logps: concatenated padded batch == each sequence alone (vs stored F32)", worst, 1e-5)

    def dpo_loss(name):
        logits = forward(cfg, W, ids, mask, ad)
        p_sum, p_avg, _ = gp.seq_logps(logits, ids, comp)
        losses, _, _ = gp.dpo_losses(p_sum[:B], p_sum[B:], r_sum[:B], r_sum[B:], p_avg[:B], p_avg[B:], r_avg[:B], r_avg[B:])
        return losses[name]

    meta = json.load(open(os.path.join(GOLDEN_DIR, "dpo-golden.json")))
    picks = picks_for(list(params))
    for name in ["sigmoid", "cdpo", "ipo", "hinge"]:
        check(f"dpo {name}: stored loss == recomputed", abs(float(dpo_loss(name)) - meta["losses"][name]), 1e-12)
        prefix = "grad." if name == "sigmoid" else f"grad_{name}."
        grads = {k[len(prefix):]: v.to(DT) for k, v in dpo.items() if k.startswith(prefix)}
        fd_check(f"dpo {name}", lambda: dpo_loss(name), params, grads, picks)

    def orpo_loss(with_prompt):
        lc, lr, log_odds, ratio, nll, nll_wp = gp.orpo_terms(forward(cfg, W, ids, mask, ad), d)
        return (nll_wp if with_prompt else nll) - (gp.BETA * ratio).mean()

    ometa = json.load(open(os.path.join(GOLDEN_DIR, "orpo-golden.json")))
    for wp, prefix, key in [(False, "grad.", "loss"), (True, "grad_with_prompt.", "loss_with_prompt")]:
        check(f"orpo {key}: stored == recomputed", abs(float(orpo_loss(wp)) - ometa[key]), 1e-12)
        grads = {k[len(prefix):]: v.to(DT) for k, v in orpo.items() if k.startswith(prefix)}
        fd_check(f"orpo {key}", lambda: orpo_loss(wp), params, grads, picks)
    x = torch.tensor([-4.0, -1e-3, -30.0], dtype=DT)
    naive = torch.log(1 - torch.exp(x))
    check("log1mexp == log(1 - e^x) where the naive form is accurate", float((gp.log1mexp(x) - naive).abs().max()), 1e-12)


def main():
    torch.set_grad_enabled(True)
    check_files()
    check_forward_vs_meta()
    check_equivalences()
    check_lora_grads()
    check_prefs()
    print(f"\n{len(FAILURES)} failure(s)" + (": " + ", ".join(FAILURES) if FAILURES else ""))
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
