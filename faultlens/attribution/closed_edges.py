"""Graph edges for every target at once, in closed form, from the one global LRP pass.

Block l's attention sub-layer, per head h (GQA: query head h reads kv head h // (H / H_kv), as
HF's ``repeat_kv``), with post-RoPE q, k, v, scaling s and probabilities P = softmax(s·qkᵀ + mask):

    o_h[j] = Σ_i P_h[j,i] v_h[i],      a[j] = W_o · concat_h o_h[j]  (+ bias)

Let g_m = ∂f/∂a (the global backward's gradient at the attention output, see `edges.py`) and
u[j] = W_o^T g_m[j], the gradient at the output projection's input. The projection acts on each
position alone, so u is exactly what the global backward already holds there, for all positions
at once with no mixing of targets. The backward of ⟨a[j], g_m[j]⟩ alone (one target j) is then

    ∂/∂v_h[i] = P_h[j,i] u_h[j]
    dP_h[j,i] = ⟨u_h[j], v_h[i]⟩,   dS_h[j,i] = P_h[j,i] (dP_h[j,i] − Σ_i' P_h[j,i'] dP_h[j,i'])
    ∂/∂k_h[i] = s dS_h[j,i] q_h[j],  ∂/∂q_h[j] = s Σ_i dS_h[j,i] k_h[i]

q[i], k[i], v[i] depend on the block input h[i] only (N1, projections, RoPE), through maps that
are linear under the LRP rules (norm 1/σ constant; the rules' ÷4/÷4/÷2 factors included). So
gradient × input, Σ_k h[i,k] ∂⟨a[j], g_m[j]⟩/∂h[i,k], needs each of them only as x°[i] = J_i h[i]
(the tensor without its bias terms, with the rule factor), and

    A[j,i] = δ_ij ⟨h[j], g_m[j]⟩                                  residual / MLP path
           + Σ_h P_h[j,i] ⟨u_h[j], v°_h[i]⟩                       values
           + Σ_h s dS_h[j,i] ⟨q_h[j], k°_h[i]⟩                    keys      (AttnLRP only)
           + δ_ij Σ_h Σ_i' s dS_h[j,i'] ⟨q°_h[j], k_h[i']⟩        query     (AttnLRP only)

CP-LRP detaches q and k (P constant), so the last two terms vanish. q°, k°, v° are one
Jacobian-vector product per layer by double backward (generic: no per-family bias bookkeeping),
from q/k/v captured live at the attention kernel (`faultlens.capture` with ``live=True``). The
target rows of P are recomputed from q, k and the kernel's mask (in at least float32), so the
global pass can run on the model's own SDPA kernel and nothing of size T² per layer is kept.
Per layer this costs two small backwards and contractions of O(J·T·H·dh),
whatever the number J of targets, against an attention backward of O(T²·d) per target (or per
packed batch, whose FLOPs still grow with J). It equals `edges.edge_rows` for both variants
(tested, all families, eager and SDPA).
"""

from __future__ import annotations

import torch

from faultlens.capture import as_additive_mask

# capture points the closed form reads, per block (post-RoPE q/k, values, the kernel's mask, scaling)
POINTS = ("blocks.*.attn.q", "blocks.*.attn.k", "blocks.*.attn.v", "blocks.*.attn.mask", "blocks.*.attn.meta")


def input_linear(h: torch.Tensor, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """x° = J_x h for each live tensor x computed position-wise from the block input h.

    Args:
        h: block input ``[1, T, d]`` (a node of the recorded graph).
        tensors: name → live tensor ``[1, heads, T, dh]``; ones without autograd history
            (CP-LRP's detached q/k) are left out of the result.

    Returns:
        name → ``[heads, T, dh]``, detached. Two backwards: Σ J^T w with a graph, then its
        gradient in every w at once.
    """
    live = {k: t for k, t in tensors.items() if t.requires_grad}
    if not live:
        return {}
    ws = {k: torch.zeros_like(t, requires_grad=True) for k, t in live.items()}
    (jt_w,) = torch.autograd.grad(list(live.values()), h, list(ws.values()), create_graph=True, retain_graph=True)
    grads = torch.autograd.grad((jt_w * h.detach()).sum(), list(ws.values()), allow_unused=True)
    return {k: (g if g is not None else torch.zeros_like(ws[k]))[0].detach() for k, g in zip(ws, grads)}


def _heads(x: torch.Tensor, H: int) -> torch.Tensor:
    """``[Hkv, T, dh]`` → ``[H, T, dh]``: query head h reads kv head h // n_rep."""
    return x.repeat_interleave(H // x.shape[0], dim=0)


def target_rows(cap: dict, js: torch.Tensor) -> torch.Tensor:
    """Attention probabilities of the target query rows, ``[H, J, T]``, from captured q, k and mask."""
    q, k = cap["q"].detach(), cap["k"].detach()  # [1, H, T, dh], [1, Hkv, T, dh]
    meta = cap["meta"]
    mask = as_additive_mask(cap["mask"], q, k, meta.get("sliding_window"))  # [1|B, 1|H, T, T] or None
    dt = torch.promote_types(q.dtype, torch.float32)  # at least float32, like the kernels' softmax
    qj = q[0][:, js].to(dt)  # [H, J, dh]
    scores = meta["scaling"] * torch.einsum("hjd,hid->hji", qj, _heads(k[0].to(dt), q.shape[1]))  # [H, J, T]
    if mask is not None:
        scores = scores + mask[0][:, js].to(dt)
    return torch.softmax(scores, dim=-1)


def closed_edge_rows(h: torch.Tensor, g_mid: torch.Tensor, u: torch.Tensor, cap: dict, lin: dict,
                     targets_pos: list[int]) -> torch.Tensor:
    """Edge rows A[j, :] of one block for all targets at once.

    Args:
        h: block input ``[T, d]``.
        g_mid: ∂f/∂(attention output) ``[T, d]``.
        u: ∂f/∂(output-projection input) ``[T, H·dh]``.
        cap: this block's captured "q" ``[1, H, T, dh]``, "k"/"v" ``[1, Hkv, T, dh]``, "mask" (as
            the kernel got it), "meta" (scaling, sliding window).
        lin: `input_linear` of q/k/v ("v" always; "q"/"k" only when live, i.e. AttnLRP).
        targets_pos: target positions j.

    Returns:
        ``[len(targets_pos), T]``.
    """
    js = torch.tensor(targets_pos, dtype=torch.long)
    Pj = target_rows(cap, js)  # [H, J, T]
    H, dt = Pj.shape[0], lin["v"].dtype
    J, ar = len(js), torch.arange(len(js))
    Pj = Pj.to(dt)
    U = u[js].view(J, H, -1).transpose(0, 1).to(dt)  # [H, J, dh]
    A = (Pj * torch.einsum("hjd,hid->hji", U, _heads(lin["v"], H))).sum(0)  # [J, T]
    A[ar, js] += (h[js] * g_mid[js]).sum(-1).to(dt)
    if "q" in lin or "k" in lin:
        s = float(cap["meta"]["scaling"])
        dP = torch.einsum("hjd,hid->hji", U, _heads(cap["v"][0].detach().to(dt), H))  # [H, J, T]
        dS = Pj * (dP - (Pj * dP).sum(-1, keepdim=True))  # softmax backward, one row per target
        q = cap["q"][0].detach().to(dt)[:, js]  # [H, J, dh]
        k = _heads(cap["k"][0].detach().to(dt), H)  # [H, T, dh]
        if "k" in lin:
            A += s * (dS * torch.einsum("hjd,hid->hji", q, _heads(lin["k"], H))).sum(0)
        if "q" in lin:
            A[ar, js] += s * (dS * torch.einsum("hjd,hid->hji", lin["q"][:, js], k)).sum((0, 2))
    return A
