"""Where attention goes by position: distance / absolute-position profiles, key-span mass,
and head redundancy. Pure functions on ``pattern [B, H, T, S]``, registered in `diagnostics`.

Positions are counted from each row's first real token, so left-padded batches line up.
"""

from __future__ import annotations

import torch
from torch import Tensor

from faultlens.diagnostics.metrics import _visible, diagnostics, sink_mass


def _first_real(key_mask: Tensor | None, B: int) -> Tensor:
    return torch.zeros(B, dtype=torch.long) if key_mask is None else key_mask.long().argmax(-1).cpu()


@diagnostics.register("position_profile")
def position_profile(pattern: Tensor, key_mask: Tensor | None = None, visible: Tensor | None = None) -> dict[str, Tensor]:
    """Attention mass as a function of relative distance and of absolute key position.

    ``relative[b, h, d]`` is the mean over queries (that can see distance d) of the mass query i
    puts on key i - d: recency heads peak at small d. ``absolute[b, h, j]`` is the mean mass
    key j (counted from the first real token) receives from the queries that see it: a primacy /
    recency / lost-in-the-middle shape shows as high ends and a low middle.

    Returns:
        ``{"relative": [B, H, S], "absolute": [B, H, S]}``; entries nobody sees are NaN (so a
        left-padded row's tail beyond its length is NaN).
    """
    B, H, T, S = pattern.shape
    vis = _visible(pattern, key_mask, visible)  # [B|1, 1, T, S]
    p = pattern.float().masked_fill(~vis, 0.0)
    qpos = torch.arange(S - T, S, device=p.device)[:, None]  # [T, 1]
    d = torch.arange(S, device=p.device)[None, :]  # [1, S] distance
    kidx = qpos - d  # [T, S] key index at distance d
    ok = kidx >= 0
    kidx = kidx.clamp_min(0)
    rel_p = torch.gather(p, -1, kidx.expand(B, H, T, S))  # [B, H, T, S] p at distance d
    rel_v = torch.gather(vis.expand(B, 1, T, S), -1, kidx.expand(B, 1, T, S)) & ok  # [B, 1, T, S]
    cnt = rel_v.sum(-2).float()  # [B, 1, S]
    rel = ((rel_p * rel_v).sum(-2) / cnt).masked_fill(cnt == 0, float("nan"))  # [B, H, S]
    absolute = sink_mass(pattern, key_mask, visible)  # [B, H, S]
    first = _first_real(key_mask, B)
    absolute = torch.stack([torch.roll(absolute[b], -int(first[b]), dims=-1) for b in range(B)])
    if key_mask is not None:  # rolled-in tail of a left-padded row has no keys
        n_real = key_mask.long().sum(-1).cpu()
        for b in range(B):
            absolute[b, :, int(n_real[b]):] = float("nan")
    return {"relative": rel, "absolute": absolute}


def span_mask(S: int, start: Tensor | int, end: Tensor | int, B: int, device=None) -> Tensor:
    """Bool ``[B, 1, 1, S]``: key positions in ``[start_b, end_b)`` (absolute indices)."""
    start = torch.as_tensor(start, device=device).reshape(-1, 1).expand(B, 1)  # [B, 1]
    end = torch.as_tensor(end, device=device).reshape(-1, 1).expand(B, 1)
    k = torch.arange(S, device=device)[None, :]  # [1, S]
    return ((k >= start) & (k < end))[:, None, None, :]


@diagnostics.register("key_span_mass")
def key_span_mass(pattern: Tensor, start: Tensor | int, end: Tensor | int) -> Tensor:
    """Mass each query puts on the key span ``[start, end)`` (absolute key indices, per row).

    Used to join "the model missed the fact" with "attention never reached it".

    Args:
        pattern: ``[B, H, T, S]``.
        start, end: ints or ``[B]`` tensors (one span per row).

    Returns:
        ``[B, H, T]`` in [0, 1].
    """
    B, _, _, S = pattern.shape
    m = span_mask(S, start, end, B, pattern.device)
    return (pattern.float() * m).sum(-1)


@diagnostics.register("head_redundancy")
def head_redundancy(pattern: Tensor, key_mask: Tensor | None = None, visible: Tensor | None = None) -> Tensor:
    """Pairwise cosine similarity of heads' attention patterns (flattened over queries × keys).

    Returns:
        ``[H, H]`` averaged over the batch; 1 off the diagonal = two heads attend identically
        (redundant), which wastes capacity and is a symptom of head collapse.
    """
    vis = _visible(pattern, key_mask, visible)
    p = pattern.float().masked_fill(~vis, 0.0).flatten(2)  # [B, H, T*S]
    p = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.matmul(p, p.transpose(-1, -2)).mean(0)  # [H, H]
