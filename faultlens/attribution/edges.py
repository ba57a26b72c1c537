"""Edge rows of the cross-layer graph: how much of node (l+1, j)'s relevance comes from (l, i).

For block l with input h, attention output a = Attn(N1(h)), mid residual m = h + a and output
o = m + MLP(N2(m)), and g = ∂f/∂o (from the one global LRP backward), the edge is

    A[j, i] = Σ_k h[i,k] · ∂⟨o[j], g[j]⟩ / ∂h[i,k]        (g held constant, LRP backward)

Only attention mixes positions. Everything after it (residual adds, N2, the MLP) acts on each
position alone, so ∂⟨o[j], g[j]⟩/∂m = δ_ij · g_m[j] with g_m = ∂⟨o, g⟩/∂m = ∂f/∂m, which the
global backward already has (it is the gradient at the attention module's output). Hence

    A[j, i] = δ_ij ⟨h[j], g_m[j]⟩  +  Σ_k h[i,k] · ∂⟨a[j], g_m[j]⟩ / ∂h[i,k]

and only the attention sub-layer (N1 + Attn) has to be re-run to separate the targets j: the
MLP is never re-run, and the per-target backward runs through attention only (`edge_rows`).

Batch packing (Tan et al. 2026, arXiv 2604.17761, App. A, after Hanna et al. 2025): the B
targets of a chunk share ONE forward of the sub-layer and one backward with
``is_grads_batched=True`` (vmap over B output gradients, gradient b = g_m at position j_b only),
instead of B forwards of B replicated copies.

`block_edge_rows` is the reference: it re-runs the whole block (the Debug-XAI procedure) and is
used to test `edge_rows` and, with one target per pass, as the unpacked baseline in benchmarks.
"""

from __future__ import annotations

import torch
from torch import nn

# Norm feeding the attention sub-layer, per family (Llama / Mistral / Qwen2, GPT-2).
_ATTN_NORM = ("input_layernorm", "ln_1")
_ATTN = ("self_attn", "attn")


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def attention_sublayer(block: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(N1, Attn) of a pre-norm decoder block."""
    norm = next(getattr(block, n) for n in _ATTN_NORM if hasattr(block, n))
    attn = next(getattr(block, n) for n in _ATTN if hasattr(block, n))
    return norm, attn


def _packed_grads(out: torch.Tensor, x: torch.Tensor, g: torch.Tensor, js: torch.Tensor, keep: bool) -> torch.Tensor:
    """∂⟨out[j_b], g[j_b]⟩/∂x for each b, in one (batched) backward. Returns ``[B, T, d]``."""
    B, (_, T, d) = len(js), out.shape
    go = torch.zeros(B, 1, T, d, dtype=out.dtype, device=out.device)  # [B, 1, T, d]
    go[torch.arange(B), 0, js] = g[js].to(out.dtype)  # g only at each target's own position
    if B == 1:
        (grad,) = torch.autograd.grad(out, x, go[0], retain_graph=keep)
        return grad
    (grad,) = torch.autograd.grad(out, x, go, retain_graph=keep, is_grads_batched=True)
    return grad[:, 0]


def edge_rows(block: nn.Module, h: torch.Tensor, g_mid: torch.Tensor, attn_call: tuple[tuple, dict],
              targets_pos: list[int], batch: int) -> torch.Tensor:
    """Edge rows A[j, :] through `block` (rules attached by the caller), `batch` targets per backward.

    Args:
        block: decoder block l.
        h: its input ``[T, d]``.
        g_mid: ∂f/∂m at the mid residual (= gradient at the attention output) ``[T, d]``.
        attn_call: the (args, kwargs) the model called the attention module with (hidden states removed).
        targets_pos: target positions j at layer l+1.
        batch: targets per backward (1 = one plain backward per target, same shared forward).

    Returns:
        ``[len(targets_pos), T]``.
    """
    norm, attn = attention_sublayer(block)
    args, kwargs = attn_call
    g_mid, h = g_mid.detach(), h.detach()
    diag = (h * g_mid).sum(-1)  # [T]: the residual / MLP path stays at its own position
    rows = []
    with torch.enable_grad():
        x = h[None].clone().requires_grad_(True)  # [1, T, d]
        out = _first(attn(norm(x), *args, **kwargs))  # [1, T, d]: one shared forward
        for s in range(0, len(targets_pos), batch):
            js = torch.tensor(targets_pos[s: s + batch])
            grad = _packed_grads(out, x, g_mid, js, keep=s + batch < len(targets_pos))  # [B, T, d]
            r = (h[None] * grad).sum(-1)  # [B, T]
            r[torch.arange(len(js)), js] += diag[js]
            rows.append(r.detach())
    return torch.cat(rows)


def block_edge_rows(block: nn.Module, h: torch.Tensor, g: torch.Tensor, call: tuple[tuple, dict],
                    targets_pos: list[int], batch: int, rerun: bool = True) -> torch.Tensor:
    """Reference edges by re-running the whole block on h with g = ∂f/∂o at the targets.

    Args:
        call: the (args, kwargs) the model called the block with.
        rerun: re-run the block forward for every chunk (Debug-XAI's procedure); False shares one forward.

    Returns:
        ``[len(targets_pos), T]``.
    """
    args, kwargs = call
    rows, out, x = [], None, None
    with torch.enable_grad():
        for s in range(0, len(targets_pos), batch):
            js = torch.tensor(targets_pos[s: s + batch])
            if out is None or rerun:
                x = h.detach()[None].clone().requires_grad_(True)  # [1, T, d]
                out = _first(block(x, *args, **kwargs))  # [1, T, d]
            grad = _packed_grads(out, x, g.detach(), js, keep=not rerun and s + batch < len(targets_pos))
            rows.append((h.detach()[None] * grad).sum(-1).detach())  # [B, T]
    return torch.cat(rows)
