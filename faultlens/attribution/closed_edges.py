"""CP-LRP graph edges for every target at once, in closed form, from the one global LRP pass.

Under CP-LRP (Ali et al. 2022) the attention probabilities P are constants in the backward, so
the attention sub-layer of block l is linear in its values:

    a[j] = W_o · concat_h( Σ_i P_h[j,i] v_h[i] )  (+ bias)

Let g_m = ∂f/∂a (the global backward's gradient at the attention output, see `edges.py`) and
u[j] = W_o^T g_m[j], the gradient at the output projection's input ("heads"). Because the
output projection acts on each position alone, u is exactly what the global backward already
holds at the recorded head outputs — for all positions at once, with no mixing of targets. Then

    ∂⟨a[j], g_m[j]⟩ / ∂v_h[i] = P_h[j,i] · u_h[j]

The value path h[i] → N1 → v[i] also acts on position i alone and, under the LRP rules (norm
1/σ constant), is affine with Jacobian J_i. Gradient × input through it is

    Σ_k h[i,k] · ∂⟨a[j], g_m[j]⟩/∂h[i,k] = Σ_h P_h[j,i] ⟨u_h[j], v°_h[i]⟩,   v°[i] = J_i h[i],

v° being the value without its bias terms (v-projection bias, LayerNorm β). v° is computed as a
Jacobian-vector product by double backward through N1 and the value projection, so no family
needs its own bias bookkeeping. With the residual / MLP path's diagonal term (`edges.py`):

    A[j,i] = δ_ij ⟨h[j], g_m[j]⟩ + Σ_h P_h[j,i] ⟨u_h[j], v°_{kv(h)}[i]⟩

(GQA: query head h reads kv head h // (H / H_kv), as HF's ``repeat_kv``). Per layer this costs
two small backwards through N1 + value projection and one contraction of O(J·T·H·dh), whatever
the number J of targets — against one attention-sub-layer backward of O(T²·d) per target (or
per packed batch, whose FLOPs still grow with J). It equals `edges.edge_rows` (tested, all
supported families). AttnLRP keeps q and k live, which adds softmax-Jacobian terms; its graphs
use the autograd path in `edges.py`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from faultlens.attribution.patching import family_of
from faultlens.capture import decoder_layers
from faultlens.registry import Registry

# LRP family -> (attention module attr, value-producing module attr, which third of its output is v)
value_sources: Registry[tuple[str, str, int | None]] = Registry("LRP value source", "lrp-value-sources")
value_sources.add("gated", ("self_attn", "v_proj", None), "Llama / Mistral / Qwen2: v_proj's whole output")
value_sources.add("gpt2", ("attn", "c_attn", 2), "GPT-2: fused [q | k | v], v is the last third")


@dataclass
class ValueRecording:
    """Per block: live value states ``[1, T, H_kv·dh]`` and detached attention probabilities ``[1, H, T, T]``."""

    values: list[torch.Tensor | None] = field(default_factory=list)
    probs: list[torch.Tensor | None] = field(default_factory=list)


@contextmanager
def record_values(model: nn.Module) -> Iterator[ValueRecording]:
    """Record each block's value states (with autograd history) and attention probabilities.

    Register AFTER `lrp_rules` so the recorded values are the rule-wrapped tensors the kernel
    used. Needs eager attention (probabilities are the module's second output). Hooks are
    removed on exit, also on error.
    """
    attn_name, v_name, third = value_sources.get(family_of(model))
    blocks = decoder_layers(model)
    rec = ValueRecording([None] * len(blocks), [None] * len(blocks))
    handles = []

    def keep_v(i):
        def hook(mod, args, out):
            rec.values[i] = out if third is None else out.chunk(3, dim=-1)[third]
        return hook

    def keep_p(i):
        def hook(mod, args, out):
            p = out[1] if isinstance(out, (tuple, list)) and len(out) > 1 else None
            rec.probs[i] = None if p is None else p.detach()
        return hook

    try:
        for i, block in enumerate(blocks):
            attn = getattr(block, attn_name)
            handles.append(getattr(attn, v_name).register_forward_hook(keep_v(i)))
            handles.append(attn.register_forward_hook(keep_p(i)))
        yield rec
    finally:
        for h in handles:
            h.remove()


def input_linear_values(v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """v° = J h: the value states' Jacobian (LRP backward) applied to the block input h.

    Args:
        v: live value states ``[1, T, Hkv·dh]`` computed from `h` in the recorded graph.
        h: the block input ``[1, T, d]`` (a node of that graph).

    Returns:
        ``[T, Hkv·dh]``, detached. Two backwards: J^T w with a graph, then its gradient in w.
    """
    w = torch.zeros_like(v, requires_grad=True)  # [1, T, Hkv·dh]
    (jt_w,) = torch.autograd.grad(v, h, w, create_graph=True, retain_graph=True)  # [1, T, d]
    (jv,) = torch.autograd.grad((jt_w * h.detach()).sum(), w)
    return jv[0].detach()


def closed_edge_rows(h: torch.Tensor, g_mid: torch.Tensor, u: torch.Tensor, v0: torch.Tensor,
                     probs: torch.Tensor, targets_pos: list[int]) -> torch.Tensor:
    """Edge rows A[j, :] of one block for all targets at once (CP-LRP).

    Args:
        h: block input ``[T, d]``.
        g_mid: ∂f/∂(attention output) ``[T, d]``.
        u: ∂f/∂(output-projection input) ``[T, H·dh]``.
        v0: bias-free values J·h ``[T, Hkv·dh]``.
        probs: attention probabilities ``[H, T, T]``.
        targets_pos: target positions j.

    Returns:
        ``[len(targets_pos), T]``.
    """
    H, T = probs.shape[0], h.shape[0]
    js = torch.tensor(targets_pos, dtype=torch.long)
    U = u[js].view(len(js), H, -1)  # [J, H, dh]
    V = v0.view(T, -1, U.shape[-1])  # [T, Hkv, dh]
    V = V.repeat_interleave(H // V.shape[1], dim=1)  # [T, H, dh]: head h reads kv head h // n_rep
    dots = torch.einsum("jhd,ihd->hji", U.to(V.dtype), V)  # [H, J, T]
    A = (probs[:, js].to(V.dtype) * dots).sum(0)  # [J, T]
    A[torch.arange(len(js)), js] += (h[js] * g_mid[js]).sum(-1).to(A.dtype)
    return A
