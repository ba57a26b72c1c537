"""Every attention statistic of one layer in a single pass over query blocks.

For a block of R queries the exact scores against all keys they can see are formed
(``[B, H, R, W]``), masked and soft-maxed in-row, and every statistic is read off that one
probability tile before it is dropped:

* entropy per query ``H_i = log Z_i − Σ_j p_ij l_ij`` (normalised by ``ln n_i``) and the max logit;
* per-key mass ``Σ_i p_ij`` (sink mass / absolute-position profile: Gu et al. 2024 α is this
  divided by the number of queries that see key j) and the α uniform attention would give;
* the relative-distance profile ``Σ_i p_{i, i−d}``, without a scatter: the tile carries R
  all-masked columns on its left, so a strided view with row stride W + 1 lines every row up by
  distance (the "skew" trick of relative-position attention, Huang et al. 2018, Music Transformer
  §3.4.1) and one column sum gives the profile;
* mass on a key span (a mat-vec) and head redundancy (Gram matrix ``Σ_ij p_h p_g`` → cosine).

Work per block is only the keys up to the block's last query (and, with a sliding window, from
its first query's window start), so a causal layer costs about half a dense pass; memory is
O(B·H·R·(S + R)). The probabilities are the model kernel's own: q/k after RoPE, its scaling,
softcap, mask, sliding window and grouped-query layout, as `faultlens.capture` hands them over.
Causal models only: a key after its query is never visible (the mask of a decoder guarantees it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from faultlens.diagnostics.stream import visible_block

# Masked logits get a large finite negative: exp underflows to exactly 0 and 0·l stays finite
# (a true -inf would give 0·inf = NaN in Σ p·l).
_BIG = -1e30


@torch.no_grad()
def query_block_stats(
    q: Tensor, k: Tensor, scaling: float, mask: Tensor | None = None, key_mask: Tensor | None = None,
    sliding_window: int | None = None, softcap: float | None = None, spans: tuple[Tensor, Tensor] | None = None,
    block: int = 64, profile: bool = True,
) -> dict[str, Tensor]:
    """All per-head statistics of one layer (same contract as `stream.attention_stats` with pass 2).

    Args:
        q: queries after RoPE ``[B, H, T, dh]`` (the last T of the S key positions).
        k: keys after RoPE ``[B, Hkv, S, dh]`` (head h uses kv head h // (H/Hkv)).
        scaling, mask, sliding_window, softcap: what the model's kernel got (mask None = causal).
        key_mask: ``[B, S]`` real-token mask.
        spans: optional ``(start [B], end [B])`` absolute key spans for ``span_mass``.
        block: queries per block (memory ∝ block · S).
        profile: also the mass-by-distance profile.

    Returns:
        ``entropy [B, H, T]`` (H_i / ln n_i, NaN where n_i <= 1), ``max_logit [B, H]``,
        ``n_visible [B, 1, T]``, ``sink_mass [B, H, S]`` (α, NaN where unseen), ``sink_baseline
        [B, 1, S]``, ``relative [B, H, S]`` (with `profile`), ``redundancy [B, H, H]`` and, given
        spans, ``span_mass [B, H, T]``.
    """
    B, H, T, dh = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g, off, P, dev = H // Hkv, S - T, block, q.device
    qs = q.float() * scaling  # [B, H, T, dh]; scaling folded into q once
    kpad = torch.cat([k.new_zeros(B, Hkv, P, dh, dtype=torch.float32), k.float()], dim=2)  # [B, Hkv, P+S, dh]
    ent = torch.full((B, H, T), float("nan"), device=dev)
    mx = torch.full((B, H), float("-inf"), device=dev)
    n_vis = torch.zeros(B, 1, T, device=dev)
    col = torch.zeros(B, H, P + S, device=dev)  # Σ_i p_ij, key j at column P + j
    viewers = torch.zeros(B, 1, P + S, device=dev)
    uniform = torch.zeros(B, 1, P + S, device=dev)  # Σ_i vis_ij / n_i
    rel = torch.zeros(B * H, S, device=dev)  # Σ p at distance d
    rel_n = torch.zeros(B, S, device=dev)
    gram = torch.zeros(B, H, H, device=dev)  # Σ p_h · p_g
    span = in_span = None
    if spans is not None:
        kp = torch.arange(-P, S, device=dev)[None, :]  # [1, P+S]
        in_span = ((kp >= spans[0].to(dev)[:, None]) & (kp < spans[1].to(dev)[:, None])).float()  # [B, P+S]
        span = torch.full((B, H, T), float("nan"), device=dev)
    for q0 in range(0, T, P):
        q1 = min(q0 + P, T)
        R = q1 - q0
        k1 = off + q1  # causal: no query of the block sees a key at or after k1
        k0 = max(0, off + q0 - sliding_window + 1) if sliding_window else 0
        W = P + k1 - k0  # tile columns: P masked pad columns, then keys [k0, k1)
        qg = qs[:, :, q0:q1].reshape(B, Hkv, g * R, dh)  # [B, Hkv, g*R, dh]
        lg = torch.matmul(qg, kpad[:, :, k0:k1 + P].transpose(-1, -2)).view(B, H, R, W)  # [B, H, R, W]
        if softcap:
            lg.div_(softcap).tanh_().mul_(softcap)
        vis = visible_block(mask, T, S, k0, k1, key_mask, sliding_window, dev, q0, q1)  # [B|1, 1, R|1, K]
        vis = vis.expand(-1, -1, R, -1)
        lg[..., :P] = _BIG
        bad = (~vis).flatten(0, 2).any(0).nonzero()  # key columns some query cannot see
        if len(bad):
            c0 = int(bad[0])  # causal + no padding: only the diagonal square
            lg[..., P + c0:].masked_fill_(~vis[..., c0:], _BIG)
        n = vis.sum(-1, dtype=torch.float32)  # [B|1, 1, R]
        m = lg.amax(-1)  # [B, H, R] max logit per query
        p = torch.softmax(lg, dim=-1)  # [B, H, R, W]
        # H = log Z − Σ p·l (Shannon entropy of softmax(l)); log Z = m + log Σ e^(l−m)
        h = torch.logsumexp(lg, dim=-1) - torch.linalg.vecdot(p, lg)  # [B, H, R]
        seen = n > 0
        if not bool(seen.all()):  # padding queries see nothing: their row carries no mass
            p.mul_(seen[..., None])
            m = m.masked_fill(~seen, float("-inf"))
        ent[..., q0:q1] = (h / torch.log(n.clamp_min(2.0))).masked_fill(n <= 1, float("nan"))
        n_vis[..., q0:q1] = n
        mx = torch.maximum(mx, m.amax(-1))
        col[..., k0:k1 + P] += p.sum(-2)
        visf = torch.cat([vis.new_zeros(*vis.shape[:-1], P), vis], -1).float()  # [B|1, 1, R, W]
        viewers[..., k0:k1 + P] += visf.sum(-2)
        uniform[..., k0:k1 + P] += (visf / n.clamp_min(1)[..., None]).sum(-2)
        if profile:
            # skew: Z[r, c] = tile[r, c + r] is key k0 − P + c + r, at distance (W − R) − c from query r
            L = min(S, W - R + 1)
            z = p.as_strided((B * H, R, W - R + 1), (R * W, W + 1, 1), p.storage_offset())
            rel[:, :L] += z.sum(-2).flip(-1)[:, :L]
            zv = visf.expand(B, 1, R, W).contiguous()
            zv = zv.as_strided((B, R, W - R + 1), (R * W, W + 1, 1), zv.storage_offset())
            rel_n[:, :L] += zv.sum(-2).flip(-1)[:, :L]
        pf = p.view(B, H, R * W)
        gram += torch.matmul(pf, pf.transpose(-1, -2))
        if span is not None:
            sp = torch.matmul(p, in_span[:, None, k0:k1 + P, None]).squeeze(-1)  # [B, H, R]
            span[..., q0:q1] = sp.masked_fill(~seen, float("nan"))
    nan = float("nan")
    viewers, col, uniform = viewers[..., P:], col[..., P:], uniform[..., P:]
    out = {
        "entropy": ent, "max_logit": mx, "n_visible": n_vis,
        "sink_mass": (col / viewers).masked_fill(viewers == 0, nan),
        "sink_baseline": (uniform / viewers).masked_fill(viewers == 0, nan),  # [B, 1, S]
    }
    if profile:
        out["relative"] = (rel.view(B, H, S) / rel_n[:, None]).masked_fill(rel_n[:, None] == 0, nan)
    norm = torch.diagonal(gram, dim1=-2, dim2=-1).sqrt().clamp_min(1e-12)  # [B, H]
    out["redundancy"] = gram / (norm[..., :, None] * norm[..., None, :])  # [B, H, H]
    if span is not None:
        out["span_mass"] = span
    return out
