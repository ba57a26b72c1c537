"""Attention Variant checks: encoder bidirectionality, head diversity, per-layer variant audit, GQA parity."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faultlens.faults.checks.base import RTOL, Skip, Verdict, check, finite, rel_diff
from faultlens.faults.checks.qkv import _identical_pairs
from faultlens.faults.kernel import allowed_mask


@check("bidirectionality", "Attention Variant", "Dynamic Dispatch",
       "Encoders must not use the causal mask: pass is_causal=False and only the padding mask.")
def bidirectionality(target, ctx) -> Verdict:
    """In an encoder, changing the last token changes the first position's output."""
    if target.causal is None:
        raise Skip("declare `is_causal` on the module")
    if target.causal:
        raise Skip("decoder target (causal by design)")
    T = ctx.seq_len
    x = target.sample(2, T)
    d = rel_diff(target.run(target.perturb(x, [T - 1]))[:, 0], target.run(x)[:, 0])
    if d < 10 * RTOL:
        return Verdict(True, f"position 0 ignores the last token (rel change {d:.3g}): the encoder is causal", {"rel_change": finite(d)})
    return Verdict(False, "bidirectional", {"rel_change": finite(d)})


@check("head_diversity", "Attention Variant", "Variant Configuration",
       "Run num_heads distinct heads: check num_heads in the config and that heads are not routed, tied or masked "
       "to a single one.")
def head_diversity(target, ctx) -> Verdict:
    """Per-head attention outputs are not identical (multi-head attention is not collapsed to one head)."""
    bad = {}
    for rec in ctx.records():
        if rec.out.dim() == 4 and rec.out.shape[1] > 1 and rec.out.shape[-2] > 1:
            pairs = _identical_pairs(rec.out.float())
            if pairs:
                bad[str(rec.call.layer)] = pairs
    if bad:
        return Verdict(True, f"identical head outputs in layer(s) {', '.join(bad)}", {"identical_heads": bad})
    return Verdict(False, "heads differ", {})


def _observed_variant(c) -> tuple[bool, int | None]:
    """(causal?, window or None) that the call's mask actually implements, from batch row 0."""
    allowed = allowed_mask(c)[0, 0]  # [T, S]
    T, S = allowed.shape
    q = torch.arange(S - T, S)[:, None]
    k = torch.arange(S)[None, :]
    causal = not bool((allowed & (k > q)).any())
    dist = (q - k).expand(T, S)[allowed]
    span = int(dist.max()) + 1 if dist.numel() else 0
    return causal, (span if span < S else None)


@check("variant_audit", "Attention Variant", "Variant Configuration",
       "Select sliding-window vs full attention per layer exactly as config.layer_types / sliding_window say, and "
       "causal only in decoders.")
def variant_audit(target, ctx) -> Verdict:
    """Each layer's mask implements the configured variant: causal or not, sliding window where configured."""
    T = max(ctx.seq_len, 12)
    obs = ctx.observe(target.sample(2, T))
    if not obs.records:
        ctx.records()  # raises Skip
    seen, bad = {}, {}
    for rec in obs.records:
        c = rec.call
        if c.q.shape[-2] != T:
            continue
        causal, window = _observed_variant(c)
        exp_w = target.expected_window(c.layer)
        if exp_w is not None and exp_w >= T:
            exp_w = None
        seen[str(c.layer)] = {"causal": causal, "window": window}
        ok_c = target.causal is None or causal == target.causal
        ok_w = window == exp_w or (exp_w is not None and window is not None and abs(window - exp_w) <= 1)
        if not (ok_c and ok_w):
            bad[str(c.layer)] = {"observed": seen[str(c.layer)], "expected": {"causal": target.causal, "window": exp_w}}
    if bad:
        return Verdict(True, f"layer(s) {', '.join(bad)} run a different attention variant than configured", {"layers": bad})
    return Verdict(False, "every layer runs its configured variant", {"layers": seen})


def _groups(target) -> int:
    cfg = getattr(target.module, "config", None)
    h = getattr(cfg, "num_attention_heads", None) or getattr(target.module, "num_heads", None)
    kv = getattr(cfg, "num_key_value_heads", None) or getattr(target.module, "num_kv_heads", None) or h
    return int(h) // int(kv) if h and kv else 1


@check("gqa_parity", "Attention Variant", "Variant Configuration",
       "Expand KV heads with repeat_interleave (each KV head serves H/Hkv adjacent query heads), as SDPA's "
       "enable_gqa does; never tile them with repeat.")
def gqa_parity(target, ctx) -> Verdict:
    """GQA equals MHA with each KV head repeat-interleaved to its query-head group."""
    g = _groups(target)
    if g <= 1:
        raise Skip("not a grouped-query model")
    bad = {}
    for rec in ctx.records():
        c = rec.call
        H, Hk = c.q.shape[1], c.k.shape[1]
        if Hk == H:  # KV already expanded before the kernel: heads within a group must be copies
            for h in range(H):
                lead = (h // g) * g
                if not torch.equal(c.k[:, h], c.k[:, lead]) or not torch.equal(c.v[:, h], c.v[:, lead]):
                    bad[f"L{c.layer}.head{h}"] = f"KV differs from its group leader {lead}"
                    break
        elif Hk * g == H:
            mha = F.scaled_dot_product_attention(c.q, c.k.repeat_interleave(g, 1), c.v.repeat_interleave(g, 1),
                                                 **c.replace(enable_gqa=False, dropout_p=0.0).kwargs())
            d = rel_diff(rec.out, mha)
            if d > RTOL:
                bad[f"L{c.layer}"] = {"rel_diff_vs_mha": finite(d)}
        else:
            bad[f"L{c.layer}"] = {"q_heads": H, "kv_heads": Hk, "expected_groups": g}
    if bad:
        return Verdict(True, "grouped-query attention does not match MHA with interleaved KV heads", bad)
    return Verdict(False, "GQA matches MHA", {"groups": g})
