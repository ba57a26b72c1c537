"""Attention Masking checks: causality leak, padding invariance (+ zero mass on padded keys), row sums."""

from __future__ import annotations

import torch

from faultlens.faults.checks.base import RTOL, Skip, Verdict, check, finite, rel_diff
from faultlens.faults.kernel import allowed_mask, expand_kv


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T] real tokens numbered from 0


@check("causality", "Attention Masking", "Dynamic Mask",
       "Build the causal mask as tril(ones(T, S), diagonal=S-T) (True = attend) and pass it, or is_causal=True, "
       "to every decoder self-attention call; check the mask is not inverted or transposed.")
def causality(target, ctx) -> Verdict:
    """Changing future tokens must not change earlier outputs (decoders)."""
    if target.causal is None:
        raise Skip("declare `is_causal` on the module to run the causality test")
    if not target.causal:
        raise Skip("encoder target (bidirectional by design)")
    T = ctx.seq_len
    x = target.sample(2, T)
    base = target.run(x)
    worst = {}
    for t in (0, T // 3, (2 * T) // 3):
        y = target.run(target.perturb(x, slice(t + 1, T)))
        d = rel_diff(y[:, : t + 1], base[:, : t + 1])
        worst[str(t)] = finite(d)
        if d > RTOL:
            return Verdict(True, f"outputs at positions <= {t} change when tokens after {t} change (rel diff {d:.3g})",
                           {"position": t, "rel_diff": finite(d), "per_position": worst})
    return Verdict(False, "no future-token leak", {"per_position": worst})


@check("padding", "Attention Masking", "Mask Application",
       "Mask padded keys with a [B, 1, 1, S] key mask (1 = keep in HF's attention_mask) added before softmax; "
       "do not mask queries instead of keys and keep the mask's batch order.")
def padding(target, ctx) -> Verdict:
    """Adding padding must not change real positions' outputs; padded keys get zero attention mass."""
    if not target.takes_mask:
        raise Skip("forward takes no attention_mask")
    T = 8
    x = target.sample(2, T)
    base = target.run(x)
    left = 2 if (target.causal or target.kind == "hf") else 0
    xp, mask = target.pad(x, left, 3)
    mask[1, left + T - 2: left + T] = 0  # rows padded differently, so a batch-misaligned mask shows
    pos = _positions(mask) if target.kind == "hf" else None
    obs = ctx.observe(xp, mask, pos)
    real = slice(left, left + T)
    d0 = rel_diff(obs.out[0, real], base[0])
    d1 = rel_diff(obs.out[1, real][: T - 2], target.run(x[1:, : T - 2])[0])
    pad_mass = 0.0
    keep = mask.bool()
    for rec in obs.records:
        c = rec.call
        if c.q.shape[-2] != xp.shape[1] or c.k.shape[-2] != xp.shape[1] or c.q.shape[0] != xp.shape[0]:
            continue
        k = expand_kv(c.k, c.q.shape[1])
        s = (c.q.float() @ k.float().transpose(-1, -2)) * c.effective_scale  # [B, H, T, S]
        p = torch.softmax(s.masked_fill(~allowed_mask(c), float("-inf")), dim=-1).nan_to_num(0)
        rows = keep[:, None, :, None] & ~keep[:, None, None, :]  # real query, padded key
        pad_mass = max(pad_mass, float((p * rows).sum(-1).max()))
    ev = {"rel_diff_row0": finite(d0), "rel_diff_row1": finite(d1), "max_mass_on_padded_keys": pad_mass}
    if d0 > RTOL or d1 > RTOL or pad_mass > 1e-6:
        return Verdict(True, f"padding changes real outputs (rel diff {max(d0, d1):.3g}) or receives attention "
                             f"(mass {pad_mass:.3g})", ev)
    return Verdict(False, "padding is invisible to real tokens", ev)


@check("row_stochastic", "Attention Score", "Normalization",
       "Apply the mask to the scores before softmax (masked_fill with -inf / dtype min), softmax over the key "
       "axis (dim=-1), and never re-mask probabilities after softmax.")
def row_stochastic(target, ctx) -> Verdict:
    """Each layer's attention rows sum to one over keys (kernel rerun with V = 1) and are finite."""
    worst, where = 0.0, None
    for rec in ctx.records():
        c = rec.call
        out = rec.rerun(c.replace(v=torch.ones_like(c.v)))  # [B, H, T, dh]: the row sums, repeated
        has_key = allowed_mask(c).expand(out.shape[:-1] + (c.k.shape[-2],)).any(-1)  # [B, H, T]
        dev = (out - 1).abs().amax(-1)
        dev = torch.where(has_key, dev.nan_to_num(float("inf")), torch.zeros_like(dev))
        if float(dev.max()) > worst:
            worst, where = float(dev.max()), c.layer
    ev = {"max_row_sum_error": finite(worst), "layer": where}
    if worst > 1e-4:
        return Verdict(True, f"attention rows do not sum to one (max error {worst:.3g}, layer {where})", ev)
    return Verdict(False, "rows sum to one", ev)
