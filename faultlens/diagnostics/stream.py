"""Attention statistics from captured q and k without materialising the ``[T, S]`` pattern.

Pass 1 walks key blocks keeping, per query row, a running max ``m``, sum ``s = Σ e^(l-m)`` and
weighted sum ``t = Σ e^(l-m)·l`` (the flash-attention recurrence), so at the end

    log Z = m + log s,        H = m + log s − t / s        (entropy of softmax(l)),

and ``m`` is the row's max logit. Pass 2 (only when mass statistics are asked for) walks the
key blocks again with the final ``log Z`` and accumulates exact probabilities into per-key,
per-distance, per-span and head×head sums. Peak extra memory is O(B·H·T·block) per layer
instead of O(B·H·T·S); queries that cannot see a key block (causality, sliding window) are
skipped, so the work is about half a dense pass.

q, k come from `faultlens.capture` (after RoPE), with the model's own scaling, softcap, mask
and grouped-query layout (`meta`), so the numbers are those of the model's own kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class StreamConfig:
    """How the streaming pass runs.

    Attributes:
        block: keys per block (memory is B·H·T·block floats).
        mass: also run pass 2 (sink mass, key-span mass, head redundancy).
        profile: in pass 2, also the mass-by-distance profile (a scatter-add, the costliest part).
    """

    block: int = 128
    mass: bool = True
    profile: bool = True


def visible_block(
    mask: Tensor | None, T: int, S: int, k0: int, k1: int, key_mask: Tensor | None,
    sliding_window: int | None, device, q0: int = 0, q1: int | None = None,
) -> Tensor:
    """Bool ``[B|1, 1, q1-q0, k1-k0]``: which keys of block [k0, k1) queries [q0, q1) may see.

    Uses the kernel's own mask when it got one (boolean = attend, or additive with the dtype's
    minimum where masked); otherwise causal (plus sliding window) like SDPA's ``is_causal``.
    Padding keys and padding queries (from ``key_mask [B, S]``) are always excluded. Query
    indices count the T queries, which are the last T of the S key positions.
    """
    q1 = T if q1 is None else q1
    if mask is not None:
        mb = mask[..., k0:k1]
        vis = mb if mb.dtype == torch.bool else mb > torch.finfo(mb.dtype).min / 2
        if vis.shape[-2] != 1:  # one row broadcasts to every query
            r0 = vis.shape[-2] - T  # a mask may cover earlier (cached) query rows too
            vis = vis[..., r0 + q0:r0 + q1, :]
    else:
        qpos = torch.arange(S - T + q0, S - T + q1, device=device)[:, None]  # [Tq, 1]
        kpos = torch.arange(k0, k1, device=device)[None, :]  # [1, bk]
        vis = kpos <= qpos  # [Tq, bk]
        if sliding_window:
            vis = vis & (qpos - kpos < sliding_window)
        vis = vis[None, None]  # [1, 1, Tq, bk]
    if key_mask is not None:
        km = key_mask.to(device).bool()  # [B, S]
        vis = vis & km[:, None, None, k0:k1] & km[:, None, S - T + q0:S - T + q1, None]
    return vis


def _logits(qg: Tensor, k: Tensor, k0: int, k1: int, scaling: float, softcap: float | None, H: int) -> Tensor:
    """``[B, H, Tq, bk]`` logits for grouped queries ``qg [B, Hkv, g*Tq, dh]`` (no k copy)."""
    B, Hkv = qg.shape[:2]
    lg = torch.matmul(qg, k[:, :, k0:k1].transpose(-1, -2)) * scaling  # [B, Hkv, g*Tq, bk]
    if softcap:
        lg = softcap * torch.tanh(lg / softcap)
    return lg.view(B, H, -1, k1 - k0)


@torch.no_grad()
def attention_stats(
    q: Tensor, k: Tensor, scaling: float, mask: Tensor | None = None, key_mask: Tensor | None = None,
    sliding_window: int | None = None, softcap: float | None = None, spans: tuple[Tensor, Tensor] | None = None,
    config: StreamConfig = StreamConfig(),
) -> dict[str, Tensor]:
    """Per-head attention statistics of one layer, streamed over key blocks.

    Args:
        q: queries after RoPE ``[B, H, T, dh]``.
        k: keys after RoPE ``[B, Hkv, S, dh]`` (Hkv divides H; head h uses kv head h // (H/Hkv)).
        scaling: the kernel's scaling. mask: the mask the kernel got (None = causal).
        key_mask: ``[B, S]`` real-token mask. sliding_window, softcap: from the layer's meta.
        spans: optional ``(start [B], end [B])`` absolute key spans for ``span_mass``.
        config: block size and whether to run pass 2.

    Returns:
        ``entropy [B, H, T]`` (normalised H_i / ln n_i, NaN where n_i <= 1), ``max_logit [B, H]``,
        ``n_visible [B, 1, T]``; with pass 2 also ``sink_mass [B, H, S]`` (Gu alpha, NaN where
        unseen), ``sink_baseline [B, 1, S]`` (the alpha uniform attention would give),
        ``relative [B, H, S]`` (mean mass at distance d; with ``config.profile``),
        ``redundancy [B, H, H]`` (cosine of heads' patterns) and, given spans, ``span_mass [B, H, T]``.
    """
    B, H, T, dh = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g = H // Hkv
    dev = q.device
    qf, kf = q.float(), k.float()
    blocks = [(a, min(a + config.block, S)) for a in range(0, S, config.block)]

    def q_range(k0: int, k1: int) -> tuple[int, int]:
        lo = max(0, k0 - (S - T))  # causal LMs only: query i sees no key after S - T + i
        hi = T if not sliding_window else min(T, k1 - 1 + sliding_window - (S - T))
        return lo, max(lo, hi)

    def grouped(lo: int, hi: int) -> Tensor:
        return qf[:, :, lo:hi].reshape(B, Hkv, g * (hi - lo), dh)  # [B, Hkv, g*Tq, dh]

    # Masked logits get a large finite negative: e^(l-m) underflows to exactly 0 and 0·l stays
    # finite (a true -inf would give 0·inf = NaN in the weighted sum).
    big = -1e30
    m = torch.full((B, H, T), big, device=dev)  # running max
    s = torch.zeros(B, H, T, device=dev)  # running Σ e^(l-m)
    t = torch.zeros(B, H, T, device=dev)  # running Σ e^(l-m)·(l-m), kept relative to the current m
    n = torch.zeros(B, 1, T, device=dev)  # visible keys per query
    for k0, k1 in blocks:  # pass 1: online softmax statistics
        lo, hi = q_range(k0, k1)
        if hi <= lo:
            continue
        vis = visible_block(mask, T, S, k0, k1, key_mask, sliding_window, dev)[..., lo:hi, :]  # [B|1, 1, Tq, bk]
        lg = _logits(grouped(lo, hi), kf, k0, k1, scaling, softcap, H)  # [B, H, Tq, bk]
        full = bool(vis.all())  # off-diagonal causal blocks need no masking pass
        if not full:
            lg.masked_fill_(~vis, big)
        m_old = m[..., lo:hi]
        m_new = torch.maximum(m_old, lg.amax(-1))
        shift = m_old - m_new  # <= 0
        decay = torch.exp(shift)
        lg.sub_(m_new[..., None])  # l - m_new, in place
        e = torch.exp(lg)  # masked → 0
        s_old = s[..., lo:hi]
        # Σ e^(l-m_new)(l-m_new) = decay·(t_old + shift·s_old) + this block's part
        t[..., lo:hi] = decay * (t[..., lo:hi] + shift * s_old) + torch.linalg.vecdot(e, lg)
        s[..., lo:hi] = s_old * decay + e.sum(-1)
        m[..., lo:hi] = m_new
        n[..., lo:hi] += (k1 - k0) if full else vis.sum(-1).float()
    ok = n > 1
    logz = (m + torch.log(s)).masked_fill(n == 0, float("inf"))  # [B, H, T]; rows seeing nothing get p = 0
    ent = (torch.log(s) - t / s) / torch.log(n.clamp_min(2.0))  # H = m + log s − Σe·l/s, shifted by m
    out = {
        "entropy": ent.masked_fill(~ok, float("nan")),
        "max_logit": m.masked_fill(n == 0, float("-inf")).amax(-1),  # [B, H]
        "n_visible": n,
    }
    if not config.mass:
        return out

    col = torch.zeros(B, H, S, device=dev)  # Σ_i p[i, j]
    viewers = torch.zeros(B, 1, S, device=dev)
    uniform = torch.zeros(B, 1, S, device=dev)  # Σ_i vis[i, j] / n_i: what uniform attention would give
    rel = torch.zeros(B * H, S, device=dev)  # Σ p at distance d
    rel_n = torch.zeros(B, S, device=dev)
    gram = torch.zeros(B, H, H, device=dev)  # Σ p_h · p_h'
    span = torch.zeros(B, H, T, device=dev) if spans is not None else None
    if spans is not None:
        kpos_all = torch.arange(S, device=dev)[None, :]
        in_span = (kpos_all >= spans[0].to(dev)[:, None]) & (kpos_all < spans[1].to(dev)[:, None])  # [B, S]
    for k0, k1 in blocks:  # pass 2: exact probabilities with the final log Z
        lo, hi = q_range(k0, k1)
        if hi <= lo:
            continue
        vis = visible_block(mask, T, S, k0, k1, key_mask, sliding_window, dev)[..., lo:hi, :]
        lg = _logits(grouped(lo, hi), kf, k0, k1, scaling, softcap, H)
        if not bool(vis.all()):
            lg.masked_fill_(~vis, big)
        p = torch.exp(lg.sub_(logz[..., lo:hi, None]))  # [B, H, Tq, bk], masked → 0
        col[..., k0:k1] += p.sum(-2)
        viewers[..., k0:k1] += vis.float().sum(-2).expand(B, 1, -1)
        uniform[..., k0:k1] += (vis.float() / n[..., lo:hi, None].clamp_min(1)).sum(-2).expand(B, 1, -1)
        dist = (torch.arange(S - T + lo, S - T + hi, device=dev)[:, None]
                - torch.arange(k0, k1, device=dev)[None, :]).clamp_min(0).flatten()  # [Tq*bk]
        if config.profile:
            rel.index_add_(1, dist, p.reshape(B * H, -1))
            rel_n.index_add_(1, dist, vis.float().expand(B, 1, -1, -1).reshape(B, -1))
        pf = p.reshape(B, H, -1)
        gram += torch.matmul(pf, pf.transpose(-1, -2))
        if span is not None:
            span[..., lo:hi] += (p * in_span[:, None, None, k0:k1]).sum(-1)
    nan = float("nan")
    out["sink_mass"] = (col / viewers).masked_fill(viewers == 0, nan)
    out["sink_baseline"] = (uniform / viewers).masked_fill(viewers == 0, nan)  # [B, 1, S]
    if config.profile:
        out["relative"] = (rel.view(B, H, S) / rel_n[:, None]).masked_fill(rel_n[:, None] == 0, nan)
    norm = torch.diagonal(gram, dim1=-2, dim2=-1).sqrt().clamp_min(1e-12)  # [B, H]
    out["redundancy"] = gram / (norm[..., :, None] * norm[..., None, :])  # [B, H, H]
    if span is not None:
        out["span_mass"] = span.masked_fill(n == 0, nan)
    return out
