"""Golden DPO and ORPO values (TRL formulas as in /work/shared/REFERENCE.md):
test/fixtures/golden/dpo-golden.{safetensors,json} and orpo-golden.{safetensors,json}.

Run after scripts/golden_lora.py: /usr/bin/python3 scripts/golden_prefs.py
Model: test/fixtures/models/llama-mha. Policy = that base + the adapter test/fixtures/golden/adapters/llama-mha
(read by PEFT key names); DPO reference = the same base with the adapter disabled. 2 preference pairs.

Layout (TRL's concatenated forward after its "flush left"): 2B rows, chosen rows 0..B-1 then rejected rows
0..B-1; each row = prompt ids followed by completion ids, right-padded with pad id 0 to T = the longest row;
attention_mask 1 on real tokens; position ids 0..T-1. completion_mask[b, t] = 1 where token t is a completion
token; its log-prob is log softmax(logits[b, t-1])[ids[b, t]]. Sequence log-prob = sum over completion tokens;
"avg" = that sum / number of completion tokens.
What is not here: tokenization / truncation (ids are given), other TRL loss types, RPO / weighting.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import apply_adapter  # noqa: E402
from golden_common import (  # noqa: E402
    ADAPTERS_DIR,
    GOLDEN_DIR,
    MODELS_DIR,
    f32,
    forward,
    load_model,
    token_logps,
    write_json,
)

BETA = 0.1
LABEL_SMOOTHING = 0.1
PAD = 0
BASE = "llama-mha"
ADAPTER = "llama-mha"

# Two preference pairs of different lengths; completions end with eos (2) as TRL appends it. Chosen for
# rewards/accuracies = 0.5 (one pair ranked right, one wrong) in both DPO and ORPO, so that metric is tested.
PROMPTS = [[1, 45, 67, 89], [1, 11, 22]]
CHOSEN = [[23, 34, 2], [99, 2]]
REJECTED = [[56, 78, 90, 12, 2], [33, 44, 55, 66, 77, 2]]


def pad_rows(rows, width):
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.int64)


def data_tensors():
    """The raw pairs (padded + lengths) and the concatenated layout."""
    rows = [p + c for p, c in zip(PROMPTS, CHOSEN)] + [p + r for p, r in zip(PROMPTS, REJECTED)]
    T = max(len(r) for r in rows)
    ids = pad_rows(rows, T)
    mask = torch.zeros_like(ids)
    comp = torch.zeros_like(ids)
    plens = [len(p) for p in PROMPTS] * 2
    for i, r in enumerate(rows):
        mask[i, : len(r)] = 1
        comp[i, plens[i] : len(r)] = 1
    labels = ids.masked_fill(comp == 0, -100)
    lens = lambda xs: torch.tensor([len(x) for x in xs], dtype=torch.int64)  # noqa: E731
    return {
        "prompt_input_ids": pad_rows(PROMPTS, max(map(len, PROMPTS))),
        "prompt_lengths": lens(PROMPTS),
        "chosen_input_ids": pad_rows(CHOSEN, max(map(len, CHOSEN))),
        "chosen_lengths": lens(CHOSEN),
        "rejected_input_ids": pad_rows(REJECTED, max(map(len, REJECTED))),
        "rejected_lengths": lens(REJECTED),
        "concat_input_ids": ids,
        "concat_attention_mask": mask,
        "concat_completion_mask": comp,
        "concat_labels": labels,
    }


def seq_logps(logits, ids, comp):
    """(summed, averaged) completion log-probs per row, and the per-token log-probs [2B, T] (0 off-completion)."""
    lp = token_logps(logits, ids) * comp
    s = lp.sum(-1)
    return s, s / comp.sum(-1), lp


def mean_completion_logits(logits, comp):
    """TRL: logits[:n][loss_mask[:n]].mean(), loss_mask shifted left by one, i.e. the logits at positions
    t-1 that predict completion tokens t, averaged over those positions (pooled over rows) and the vocabulary."""
    pred = torch.zeros_like(comp, dtype=torch.bool)
    pred[:, :-1] = comp[:, 1:].bool()
    return logits[pred].mean()


def log1mexp(x):
    """log(1 - e^x) for x < 0, stably (Maechler 2012): log(-expm1(x)) near 0, log1p(-exp(x)) far from it."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def dpo_losses(pc, pr, rc, rr, pc_avg, pr_avg, rc_avg, rr_avg):
    d = (pc - rc) - (pr - rr)
    d_avg = (pc_avg - rc_avg) - (pr_avg - rr_avg)
    return {
        "sigmoid": (-F.logsigmoid(BETA * d)).mean(),
        "cdpo": (-(1 - LABEL_SMOOTHING) * F.logsigmoid(BETA * d) - LABEL_SMOOTHING * F.logsigmoid(-BETA * d)).mean(),
        "ipo": ((d_avg - 1 / (2 * BETA)) ** 2).mean(),
        "hinge": torch.relu(1 - BETA * d).mean(),
    }, d, d_avg


def reward_metrics(c, r, rc=None, rr=None):
    """rewards/* as TRL logs them; rc/rr = reference log-probs (None for ORPO: reward = beta * logp)."""
    cr = BETA * (c - rc) if rc is not None else BETA * c
    rj = BETA * (r - rr) if rr is not None else BETA * r
    return {
        "rewards/chosen": float(cr.mean()),
        "rewards/rejected": float(rj.mean()),
        "rewards/accuracies": float((cr > rj).double().mean()),
        "rewards/margins": float((cr - rj).mean()),
    }


def orpo_terms(logits, d):
    B = len(PROMPTS)
    ids, mask, comp = d["concat_input_ids"], d["concat_attention_mask"], d["concat_completion_mask"]
    _, avg, lp = seq_logps(logits, ids, comp)
    lc, lr = avg[:B], avg[B:]
    log_odds = (lc - lr) - (log1mexp(lc) - log1mexp(lr))
    ratio = F.logsigmoid(log_odds)
    # ours (REFERENCE.md): NLL = token mean over the chosen *response* tokens, pooled over the chosen rows
    nll = -lp[:B].sum() / comp[:B].sum()
    # TRL's code: CE over chosen prompt + response (every real token after the first), pooled, padding excluded
    all_lp = token_logps(logits, ids)
    tok = mask.clone()
    tok[:, 0] = 0
    nll_wp = -(all_lp[:B] * tok[:B]).sum() / tok[:B].sum()
    return lc, lr, log_odds, ratio, nll, nll_wp


def main():
    base_dir = os.path.join(MODELS_DIR, BASE)
    adapter_dir = os.path.join(ADAPTERS_DIR, ADAPTER)
    cfg, W = load_model(base_dir)
    acfg, mods = apply_adapter.read_adapter(adapter_dir)
    ad = apply_adapter.as_adapter(acfg, mods)
    params = ad.params()
    for _, t in params:
        t.requires_grad_(True)
    d = data_tensors()
    B = len(PROMPTS)
    ids, mask, comp = d["concat_input_ids"], d["concat_attention_mask"], d["concat_completion_mask"]

    def grads_of(loss):
        gs = torch.autograd.grad(loss, [t for _, t in params], retain_graph=True)
        return {k: g for (k, _), g in zip(params, gs)}

    # ---------------- DPO
    logits = forward(cfg, W, ids, mask, ad)
    with torch.no_grad():
        ref_logits = forward(cfg, W, ids, mask)
    p_sum, p_avg, _ = seq_logps(logits, ids, comp)
    r_sum, r_avg, _ = seq_logps(ref_logits, ids, comp)
    pc, pr, rc, rr = p_sum[:B], p_sum[B:], r_sum[:B], r_sum[B:]
    losses, dlog, dlog_avg = dpo_losses(pc, pr, rc, rr, p_avg[:B], p_avg[B:], r_avg[:B], r_avg[B:])
    assert bool((BETA * dlog < 1).all()), "hinge would have zero gradient; change the data"

    tensors = dict(d)
    tensors.update(
        policy_chosen_logps=f32(pc), policy_rejected_logps=f32(pr),
        reference_chosen_logps=f32(rc), reference_rejected_logps=f32(rr),
        policy_chosen_logps_avg=f32(p_avg[:B]), policy_rejected_logps_avg=f32(p_avg[B:]),
        reference_chosen_logps_avg=f32(r_avg[:B]), reference_rejected_logps_avg=f32(r_avg[B:]),
        logits_diff=f32(dlog), logits_diff_avg=f32(dlog_avg),
    )
    for name, loss in losses.items():
        tensors[f"loss_{name}"] = f32(loss)
        prefix = "grad." if name == "sigmoid" else f"grad_{name}."
        for k, g in grads_of(loss).items():
            tensors[prefix + k] = f32(g)
    metrics = reward_metrics(pc, pr, rc, rr)
    metrics.update({
        "logps/chosen": float(pc.mean()),
        "logps/rejected": float(pr.mean()),
        "logits/chosen": float(mean_completion_logits(logits[:B], comp[:B])),
        "logits/rejected": float(mean_completion_logits(logits[B:], comp[B:])),
    })
    ipo_metrics = reward_metrics(p_avg[:B], p_avg[B:], r_avg[:B], r_avg[B:])
    ipo_metrics.update({"logps/chosen": float(p_avg[:B].mean()), "logps/rejected": float(p_avg[B:].mean())})
    meta = {
        "model_dir": f"test/fixtures/models/{BASE}",
        "policy_adapter_dir": f"test/fixtures/golden/adapters/{ADAPTER}",
        "reference": "the base model with the adapter disabled",
        "beta": BETA,
        "label_smoothing": LABEL_SMOOTHING,
        "prompts": PROMPTS, "chosen": CHOSEN, "rejected": REJECTED,
        "losses": {k: float(v) for k, v in losses.items()},
        "metrics": metrics,
        "metrics_ipo": ipo_metrics,
    }
    st.save(tensors, os.path.join(GOLDEN_DIR, "dpo-golden.safetensors"), {"format": "pt"})
    write_json(os.path.join(GOLDEN_DIR, "dpo-golden.json"), meta)
    print("dpo:", {k: round(float(v), 8) for k, v in losses.items()})

    # ---------------- ORPO
    lc, lr, log_odds, ratio, nll, nll_wp = orpo_terms(logits, d)
    loss = nll - (BETA * ratio).mean()
    loss_wp = nll_wp - (BETA * ratio).mean()
    tensors = dict(d)
    tensors.update(
        policy_chosen_logps_avg=f32(lc), policy_rejected_logps_avg=f32(lr), log_odds=f32(log_odds),
        loss=f32(loss), loss_with_prompt=f32(loss_wp), nll_chosen=f32(nll), nll_chosen_with_prompt=f32(nll_wp),
    )
    for k, g in grads_of(loss).items():
        tensors["grad." + k] = f32(g)
    for k, g in grads_of(loss_wp).items():
        tensors["grad_with_prompt." + k] = f32(g)
    metrics = reward_metrics(lc, lr)
    metrics.update({
        "logps/chosen": float(lc.mean()),
        "logps/rejected": float(lr.mean()),
        "nll_loss": float(nll),
        "log_odds_ratio": float(ratio.mean()),
        "log_odds_chosen": float(log_odds.mean()),
    })
    meta = {
        "model_dir": f"test/fixtures/models/{BASE}",
        "policy_adapter_dir": f"test/fixtures/golden/adapters/{ADAPTER}",
        "beta": BETA,
        "prompts": PROMPTS, "chosen": CHOSEN, "rejected": REJECTED,
        "loss": float(loss),
        "loss_with_prompt": float(loss_wp),
        "nll_chosen": float(nll),
        "nll_chosen_with_prompt": float(nll_wp),
        "metrics": metrics,
        "metrics_with_prompt": dict(metrics, nll_loss=float(nll_wp)),
    }
    st.save(tensors, os.path.join(GOLDEN_DIR, "orpo-golden.safetensors"), {"format": "pt"})
    write_json(os.path.join(GOLDEN_DIR, "orpo-golden.json"), meta)
    print(f"orpo: loss {float(loss):.8f}, with prompt {float(loss_wp):.8f}")


if __name__ == "__main__":
    main()
