"""Where an attention module keeps its Q/K/V projections, in one canonical form.

Every layout exposes the query/key/value projections as ``W [n_heads_of_kind * head_dim, d_model]``
and ``b [n_heads_of_kind * head_dim] | None`` (``y = x @ W.T + b``), whatever the storage:
separate ``nn.Linear`` (Llama/Mistral/Qwen2 ``q_proj``, BERT ``query``), GPT-2's fused
``Conv1D c_attn`` (stored transposed, q|k|v side by side) or GPT-NeoX's fused ``query_key_value``
(per head [q, k, v] interleaved). Checks read through it (pre-RoPE q/k/v, weight audits,
gradients); injectors write through it (zeroing, tying heads, freezing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from faultlens.registry import Registry

KINDS = ("q", "k", "v")


@dataclass
class Projections:
    """Canonical access to one attention module's projections.

    Attributes:
        module: the module holding the projection parameters.
        n_heads / n_kv_heads / head_dim: head geometry.
        get: ``get(kind) -> (W, b)`` copies in canonical form.
        set: ``set(kind, W, b)`` writes canonical tensors back in place.
        params: ``params(kind) -> list[(owner, attr_name)]`` where the weight lives (fused kinds share one).
        has_qk_norm: q/k are normalised after projection (norm comparison is then skipped).
    """

    module: nn.Module
    n_heads: int
    n_kv_heads: int
    head_dim: int
    get: Callable
    set: Callable
    params: Callable
    has_qk_norm: bool = False

    def heads(self, kind: str) -> int:
        return self.n_heads if kind == "q" else self.n_kv_heads

    def project(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pre-RoPE q ``[B, H, T, dh]``, k/v ``[B, Hkv, T, dh]`` from hidden states ``[B, T, D]``."""
        out = {}
        for kind in KINDS:
            W, b = self.get(kind)
            y = x @ W.T.to(x.dtype) + (b.to(x.dtype) if b is not None else 0)  # [B, T, Hk*dh]
            out[kind] = y.view(*x.shape[:-1], self.heads(kind), self.head_dim).transpose(1, 2)
        return out

    def head_rows(self, h: int) -> slice:
        return slice(h * self.head_dim, (h + 1) * self.head_dim)


layouts: Registry[Callable[[nn.Module], Projections | None]] = Registry("projection layout", "projection-layouts")


def _geometry(mod: nn.Module, q_rows: int) -> tuple[int, int, int]:
    cfg = getattr(mod, "config", None)
    h = (getattr(cfg, "num_attention_heads", None) or getattr(mod, "num_heads", None)
         or getattr(mod, "n_heads", None) or getattr(mod, "num_attention_heads", None) or getattr(mod, "n_head", None))
    if h is None:
        raise ValueError("cannot tell the number of heads: set `num_heads` on the module")
    kv = (getattr(cfg, "num_key_value_heads", None) or getattr(mod, "num_kv_heads", None)
          or getattr(mod, "num_key_value_heads", None) or h)
    return int(h), int(kv), q_rows // int(h)


def _split(mod: nn.Module, names: tuple[str, str, str]) -> Projections:
    lin = dict(zip(KINDS, (getattr(mod, n) for n in names)))
    h, kv, dh = _geometry(mod, lin["q"].weight.shape[0])

    def get(kind):
        m = lin[kind]
        return m.weight.detach().clone(), (m.bias.detach().clone() if getattr(m, "bias", None) is not None else None)

    @torch.no_grad()
    def set_(kind, W, b):
        lin[kind].weight.copy_(W)
        if b is not None:
            lin[kind].bias.copy_(b)

    return Projections(mod, h, kv, dh, get, set_, lambda kind: [(lin[kind], "weight")],
                       has_qk_norm=hasattr(mod, "q_norm") or hasattr(mod, "k_norm"))


@layouts.register("split")
def _split_layout(mod: nn.Module) -> Projections | None:
    """Separate q_proj/k_proj/v_proj (Llama family, reference module) or query/key/value (BERT)."""
    for names in (("q_proj", "k_proj", "v_proj"), ("query", "key", "value")):
        if all(isinstance(getattr(mod, n, None), nn.Module) for n in names):
            return _split(mod, names)
    return None


@layouts.register("gpt2")
def _gpt2_layout(mod: nn.Module) -> Projections | None:
    """GPT-2 `c_attn` Conv1D: weight ``[D, 3D]`` (in, out), output split q|k|v."""
    c = getattr(mod, "c_attn", None)
    if c is None or getattr(mod, "is_cross_attention", False):
        return None
    D = c.weight.shape[0]
    h, kv, dh = _geometry(mod, D)
    cols = {kind: slice(i * D, (i + 1) * D) for i, kind in enumerate(KINDS)}

    def get(kind):
        return c.weight[:, cols[kind]].detach().T.clone(), c.bias[cols[kind]].detach().clone()

    @torch.no_grad()
    def set_(kind, W, b):
        c.weight[:, cols[kind]] = W.T
        if b is not None:
            c.bias[cols[kind]] = b

    return Projections(mod, h, kv, dh, get, set_, lambda kind: [(c, "weight")])


@layouts.register("neox")
def _neox_layout(mod: nn.Module) -> Projections | None:
    """GPT-NeoX `query_key_value`: Linear ``[3D, D]``, rows grouped per head as [q, k, v]."""
    lin = getattr(mod, "query_key_value", None)
    if lin is None:
        return None
    D = lin.weight.shape[1]
    h, kv, dh = _geometry(mod, D)
    idx = {kind: i for i, kind in enumerate(KINDS)}

    def get(kind):
        W = lin.weight.detach().view(h, 3, dh, D)[:, idx[kind]].reshape(h * dh, D).clone()
        b = lin.bias.detach().view(h, 3, dh)[:, idx[kind]].reshape(-1).clone() if lin.bias is not None else None
        return W, b

    @torch.no_grad()
    def set_(kind, W, b):
        lin.weight.view(h, 3, dh, D)[:, idx[kind]] = W.view(h, dh, D)
        if b is not None and lin.bias is not None:
            lin.bias.view(h, 3, dh)[:, idx[kind]] = b.view(h, dh)

    return Projections(mod, h, kv, dh, get, set_, lambda kind: [(lin, "weight")])


def find_projections(attn: nn.Module) -> Projections | None:
    """The projections of an attention module (or its `.self` child, as in BERT), or None."""
    for mod in (attn, getattr(attn, "self", None)):
        if not isinstance(mod, nn.Module):
            continue
        for name in layouts.names():
            try:
                p = layouts.get(name)(mod)
            except (ValueError, AttributeError):
                p = None
            if p is not None:
                return p
    return None
