"""Attention Score checks: SDPA reference equality, scaling, eval determinism."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from faultlens.faults.checks.base import Verdict, check, finite, rel_diff

# Same fp32 inputs through two SDPA backends agree to ~1e-7; fp16 rounding of scores costs ~1e-4.
KERNEL_RTOL = 1e-5


def expected_scale(target, head_dim: int) -> float:
    """Softmax temperature the config asks for: 1/sqrt(d_head) (Vaswani et al. 2017, eq. 1) unless overridden."""
    cfg = getattr(target.module, "config", None)
    for key in ("query_pre_attn_scalar",):
        if cfg is not None and getattr(cfg, key, None):
            return float(getattr(cfg, key)) ** -0.5
    if cfg is not None and getattr(cfg, "attention_multiplier", None):
        return float(cfg.attention_multiplier)
    return getattr(target.module, "expected_scale", None) or 1.0 / math.sqrt(head_dim)


@check("sdpa_reference", "Attention Score", "Implementation",
       "Compute attention as softmax(q k^T * scale + mask) v in fp32 (or call "
       "torch.nn.functional.scaled_dot_product_attention); keep dropout off in eval and reduce over keys.")
def sdpa_reference(target, ctx) -> Verdict:
    """Each layer's kernel output equals fp32 scaled_dot_product_attention on the same q, k, v, mask and scale."""
    worst, where = 0.0, None
    for rec in ctx.records():
        c = rec.call
        ref = F.scaled_dot_product_attention(c.q.float(), c.k.float(), c.v.float(),
                                             **c.replace(dropout_p=0.0).kwargs())
        d = rel_diff(rec.out.float(), ref)
        if d > worst:
            worst, where = d, c.layer
    ev = {"max_rel_diff": finite(worst), "layer": where, "tolerance": KERNEL_RTOL}
    if worst > KERNEL_RTOL:
        return Verdict(True, f"attention kernel differs from the SDPA reference (rel diff {worst:.3g}, layer {where})", ev)
    return Verdict(False, "kernel matches the SDPA reference", ev)


@check("scaling", "Attention Score", "Normalization",
       "Scale scores by 1/sqrt(d_head) (the `scaling`/`scale` argument), not 1, 1/d_head or sqrt(d_head).")
def scaling(target, ctx) -> Verdict:
    """The scale each kernel call uses equals the expected 1/sqrt(d_head) (or the config's override)."""
    bad = {}
    for rec in ctx.records():
        c = rec.call
        exp = expected_scale(target, c.q.shape[-1])
        if abs(c.effective_scale - exp) > 1e-3 * exp:
            bad[str(c.layer)] = {"used": c.effective_scale, "expected": exp}
    if bad:
        return Verdict(True, f"{len(bad)} attention call(s) use the wrong softmax scale", {"layers": bad})
    return Verdict(False, "scale is 1/sqrt(d_head)", {})


@check("eval_determinism", "Attention Score", "Implementation",
       "Gate every dropout on module.training (F.dropout(x, p, training=self.training)) and pass dropout_p=0 "
       "to the kernel in eval.")
def eval_determinism(target, ctx) -> Verdict:
    """Two eval forwards are identical and no kernel call has dropout_p > 0 in eval."""
    x = target.sample(2, ctx.seq_len)
    torch.manual_seed(1)
    a = ctx.observe(x)
    torch.manual_seed(2)
    b = target.run(x)
    d = rel_diff(a.out, b)
    drop = sorted({float(r.call.dropout_p) for r in a.records if r.call.dropout_p > 0})
    ev = {"rel_diff": finite(d), "kernel_dropout_p_in_eval": drop}
    if d > 1e-6 or drop:
        return Verdict(True, f"eval forwards differ (rel diff {d:.3g}) or kernel dropout is on in eval {drop}", ev)
    return Verdict(False, "eval is deterministic", ev)
