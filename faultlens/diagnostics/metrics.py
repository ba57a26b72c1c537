"""Attention-health metrics as pure functions on tensors (no model, no hooks, no state).

Inputs are attention probabilities ``pattern [B, H, T, S]`` (queries are the last T of the S key
positions, as with a KV cache), raw q/k, or residual streams ``x [B, T, d]``. Every function is
registered in `diagnostics`, so `faultlens list diagnostics` shows them and monitors or the
probe runner can look them up by name. Finding thresholds live in `findings.py`, not here.

Conventions:
    * ``key_mask [B, S]``: 1/True for real tokens, 0 for padding (either side).
    * ``visible [B|1, 1|H, T, S]`` bool: which keys each query may see; by default causal and
      restricted to real keys. A query that is itself padding (``T == S`` and its key_mask is 0)
      sees nothing, so its row is excluded (NaN) from every per-query statistic.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from faultlens.registry import Registry

diagnostics: Registry[Callable[..., object]] = Registry("diagnostic")


def causal_visible(
    B: int, T: int, S: int, key_mask: Tensor | None = None, sliding_window: int | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Boolean ``[B|1, 1, T, S]``: key j is visible to query i (causal, window, real tokens only)."""
    qpos = torch.arange(S - T, S, device=device)[:, None]  # [T, 1]
    kpos = torch.arange(S, device=device)[None, :]  # [1, S]
    vis = kpos <= qpos  # [T, S]
    if sliding_window:
        vis = vis & (qpos - kpos < sliding_window)
    vis = vis[None, None]  # [1, 1, T, S]
    if key_mask is not None:
        km = key_mask.to(device=vis.device).bool()  # [B, S]
        vis = vis & km[:, None, None, :]
        vis = vis & km[:, None, S - T:, None]  # a padding query sees nothing
    return vis


def _visible(pattern: Tensor, key_mask: Tensor | None, visible: Tensor | None) -> Tensor:
    if visible is not None:
        return visible.bool()
    B, _, T, S = pattern.shape
    return causal_visible(B, T, S, key_mask, device=pattern.device)


@diagnostics.register("normalized_entropy")
def normalized_entropy(pattern: Tensor, key_mask: Tensor | None = None, visible: Tensor | None = None) -> Tensor:
    """Normalised attention entropy ``H_i / ln(n_i)`` per query row.

    Args:
        pattern: attention probabilities ``[B, H, T, S]`` (rows sum to 1 over visible keys).
        key_mask: ``[B, S]`` real-token mask (padding keys and padding queries are excluded).
        visible: optional explicit visibility ``[B|1, 1|H, T, S]`` (e.g. a sliding window).

    Returns:
        ``[B, H, T]`` in [0, 1]: 0 = all mass on one key (over-focus), 1 = uniform over the n_i
        visible keys (dispersion). Rows with ``n_i <= 1`` (the first token, padding queries) are
        NaN: their entropy is 0 by construction and says nothing about the head.
    """
    vis = _visible(pattern, key_mask, visible)
    p = pattern.float().masked_fill(~vis, 0.0)
    plogp = torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p))
    H = -plogp.sum(-1)  # [B, H, T]
    n = vis.sum(-1).expand(H.shape).float()  # [B, H, T]
    out = H / torch.log(n.clamp_min(2.0))
    return out.masked_fill(n <= 1, float("nan"))


@diagnostics.register("entropy_summary")
def entropy_summary(norm_entropy: Tensor, threshold: float = 0.1) -> dict[str, Tensor]:
    """Per-head summary of ``normalized_entropy`` over batch and queries, ignoring NaN rows.

    Returns:
        ``{"mean", "min", "frac_low"}`` each ``[H]``; ``frac_low`` is the share of query rows
        with normalised entropy below `threshold`. A head with no valid row gets NaN.
    """
    e = norm_entropy.transpose(0, 1).reshape(norm_entropy.shape[1], -1)  # [H, B*T]
    valid = ~torch.isnan(e)
    cnt = valid.sum(-1).float()  # [H]
    z = torch.where(valid, e, torch.zeros_like(e))
    mean = z.sum(-1) / cnt
    mn = torch.where(valid, e, torch.full_like(e, float("inf"))).amin(-1)
    low = ((e < threshold) & valid).sum(-1).float() / cnt
    nan = cnt == 0
    return {"mean": mean, "min": mn.masked_fill(nan, float("nan")), "frac_low": low.masked_fill(nan, float("nan"))}


@diagnostics.register("sink_mass")
def sink_mass(pattern: Tensor, query_mask: Tensor | None = None, visible: Tensor | None = None) -> Tensor:
    """Mean attention each key receives over the queries that can see it.

    This is Gu et al. (2024, "When attention sink emerges in language models") alpha:
    ``alpha_h(k) = 1/|Q_k| * sum_{i in Q_k} A_h[i, k]`` with Q_k the (real) queries that see k.

    Args:
        pattern: ``[B, H, T, S]``.
        query_mask: ``[B, S]`` real-token mask (same convention as ``key_mask`` elsewhere).
        visible: optional explicit visibility ``[B|1, 1|H, T, S]``.

    Returns:
        ``[B, H, S]``; keys seen by no query are NaN. Keys near the end are seen by few queries,
        so their values are noisy; `sink_positions` requires a minimum number of viewers.
    """
    vis = _visible(pattern, query_mask, visible)
    p = pattern.float().masked_fill(~vis, 0.0)
    n = vis.sum(-2).float()  # [B|1, 1|H, S]
    return (p.sum(-2) / n).masked_fill(n == 0, float("nan")).expand(p.shape[0], p.shape[1], -1)


class SinkHeads(NamedTuple):
    """Which heads dump mass on a sink position (Gu et al. 2024)."""

    mass: Tensor  # [H] batch-mean alpha at the position
    is_sink: Tensor  # [H] bool, mass > threshold
    share: Tensor  # [] fraction of heads that are sinks (Gu et al.'s Sink^epsilon for one layer)


@diagnostics.register("sink_heads")
def sink_heads(pattern: Tensor, threshold: float = 0.3, position: int = 0, key_mask: Tensor | None = None) -> SinkHeads:
    """Gu et al. (2024) share-of-heads sink metric at one position (default the first real token).

    ``Sink^eps = 1/H sum_h 1(alpha_h(position) > eps)`` with eps = `threshold` (0.3 in the
    paper); averaging the share over layers gives their model-level number.

    Args:
        pattern: ``[B, H, T, S]``.
        threshold: eps.
        position: index among the real tokens of each row (0 = first real token, so a
            left-padded batch measures each row's own first token).
        key_mask: ``[B, S]`` real-token mask.
    """
    alpha = sink_mass(pattern, key_mask)  # [B, H, S]
    B, S = alpha.shape[0], alpha.shape[-1]
    first = torch.zeros(B, dtype=torch.long) if key_mask is None else key_mask.long().argmax(-1)
    idx = (first + position).clamp(max=S - 1).to(alpha.device)  # [B]
    mass = alpha[torch.arange(B), :, idx].nanmean(0)  # [H]
    is_sink = mass > threshold
    return SinkHeads(mass, is_sink, is_sink.float().mean())


@diagnostics.register("sink_positions")
def sink_positions(
    pattern: Tensor, threshold: float = 0.3, key_mask: Tensor | None = None, min_viewers: int = 4,
) -> Tensor:
    """General sink detector (Xiao et al. 2023): keys that absorb a large share of attention.

    A key is a sink in a head when its Gu alpha (mean mass over the queries that see it)
    exceeds `threshold` and at least `min_viewers` queries see it, so the last few positions,
    seen by one or two queries, cannot qualify by accident. Any position can be a sink, not only
    BOS/position 0 (e.g. the first delimiter or newline).

    Returns:
        bool ``[B, H, S]``.
    """
    vis = _visible(pattern, key_mask, None)
    alpha = sink_mass(pattern, key_mask)
    viewers = vis.sum(-2).expand_as(alpha)  # [B, H, S]
    return (alpha > threshold) & (viewers >= min_viewers)


@diagnostics.register("token_uniformity")
def token_uniformity(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Dong et al. (2021) relative residual ``||X - 1 x̄ᵀ||_F / ||X||_F`` per sequence.

    ``1 x̄ᵀ`` (x̄ = the token mean) is the nearest "all tokens equal" rank-1 matrix in Frobenius
    norm (the paper's res(X) uses a composite l1/l-inf norm; Frobenius keeps it a projection).

    Args:
        x: residual stream ``[B, T, d]``.
        mask: ``[B, T]`` real-token mask.

    Returns:
        ``[B]`` in [0, 1]: 0 = rank collapse (every token the same vector), ~1 = tokens far apart.
    """
    x = x.float()
    m = torch.ones(x.shape[:2], device=x.device) if mask is None else mask.float().to(x.device)  # [B, T]
    xm = x * m[..., None]
    mean = xm.sum(1, keepdim=True) / m.sum(1, keepdim=True)[..., None].clamp_min(1)  # [B, 1, d]
    res = ((x - mean) * m[..., None]).flatten(1).norm(dim=-1)
    return res / xm.flatten(1).norm(dim=-1).clamp_min(1e-12)


@diagnostics.register("effective_rank")
def effective_rank(x: Tensor, mask: Tensor | None = None, max_tokens: int | None = None) -> Tensor:
    """Roy & Vetterli (2007) effective rank ``exp(-sum p_k ln p_k)``, ``p = sigma / sum sigma``.

    Computed on X itself (not centred), over the real tokens of each sequence; singular values
    below 0.3% of the largest are treated as 0 (numerical rank tolerance of the fp32 Gram route).
    ``max_tokens`` bounds the cost on long inputs (an eigendecomposition is cubic): it then uses
    that many evenly spaced tokens, an estimate of the rank of the whole sequence.

    Returns:
        ``[B]`` in [1, min(T, d)].
    """
    out = []
    for b in range(x.shape[0]):
        xb = x[b] if mask is None else x[b][mask[b].bool()]  # [t, d]
        if max_tokens is not None and xb.shape[0] > max_tokens:
            xb = xb[torch.linspace(0, xb.shape[0] - 1, max_tokens).round().long()]
        xb = xb.float()
        # singular values from the smaller Gram matrix: one matmul + a small eigvalsh, far cheaper than
        # an SVD. numpy's LAPACK call: torch.linalg.eigvalsh measured 30x slower on this CPU build.
        gram = xb @ xb.T if xb.shape[0] <= xb.shape[1] else xb.T @ xb
        # One BLAS thread: after a multi-threaded call OpenBLAS's idle threads spin and take the
        # cores from the model's own forward (measured: +0.6 s per 12-layer forward at n = 512).
        with threadpool_limits(limits=1, user_api="blas"):
            ev = torch.from_numpy(np.linalg.eigvalsh(gram.detach().cpu().double().numpy())).float()
        # fp32 Gram eigenvalues carry ~1e-7·λmax noise; below 1e-5·λmax (σ < 0.3% σmax) count as 0
        s = torch.where(ev > 1e-5 * ev.max(), ev, torch.zeros_like(ev)).sqrt()
        p = s / s.sum().clamp_min(1e-12)
        p = p[p > 1e-12]
        out.append(torch.exp(-(p * p.log()).sum()).float())
    return torch.stack(out)


def _bool_allowed(mask: Tensor | None, T: int, S: int, device) -> Tensor:
    if mask is None:
        return causal_visible(1, T, S, device=device)
    if mask.dtype == torch.bool:
        return mask
    return mask > torch.finfo(mask.dtype).min / 2  # additive: min-value entries are masked


@diagnostics.register("max_attention_logit")
def max_attention_logit(q: Tensor, k: Tensor, scaling: float, mask: Tensor | None = None) -> Tensor:
    """Largest pre-softmax logit ``scaling * q·k`` per head over visible (query, key) pairs.

    Growth of this number precedes attention-logit blow-up and loss spikes (Dehghani et al. 2023;
    Wortsman et al. 2023), so monitors track it.

    Args:
        q: ``[B, H, T, dh]`` (after RoPE).
        k: ``[B, Hkv, S, dh]``; grouped-query layouts (Hkv < H) are expanded as the model does.
        scaling: the model's own scaling (usually dh ** -0.5).
        mask: boolean (True = attend) or additive ``[B|1, 1|H, T, S]``; None = causal.

    Returns:
        ``[B, H]``.
    """
    B, H, T, _ = q.shape
    S = k.shape[2]
    allowed = _bool_allowed(mask, T, S, q.device)
    k = k.repeat_interleave(H // k.shape[1], dim=1)  # [B, H, S, dh]
    out = torch.full((B, H), float("-inf"), device=q.device)
    for a in range(0, T, 256):  # query blocks bound memory at [B, H, 256, S]
        lg = torch.matmul(q[:, :, a:a + 256].float(), k.float().transpose(-1, -2)) * scaling  # [B, H, t, S]
        lg = lg.masked_fill(~allowed[..., a:a + 256, :], float("-inf"))
        out = torch.maximum(out, lg.amax((-1, -2)))
    return out


@diagnostics.register("lazy_cosine")
def lazy_cosine(resid_in: Tensor, resid_out: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean per-token cosine between an attention block's input and output residual stream.

    He et al. (2024, "What matters in transformers? Not all attention is needed"): a block whose
    output residual is nearly its input (cosine ~1) does little and can often be dropped.

    Args:
        resid_in: residual before the attention block ``[B, T, d]``.
        resid_out: residual after adding the attention output ``[B, T, d]``.
        mask: ``[B, T]`` real-token mask.

    Returns:
        ``[B]`` in [-1, 1].
    """
    cos = torch.nn.functional.cosine_similarity(resid_in.float(), resid_out.float(), dim=-1, eps=1e-12)  # [B, T]
    m = torch.ones_like(cos) if mask is None else mask.float().to(cos.device)
    return (cos * m).sum(-1) / m.sum(-1).clamp_min(1)

