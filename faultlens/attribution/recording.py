"""Keep the internal tensors LRP reads relevance from, with autograd history, during one forward.

Unlike `faultlens.capture` (which detaches: it observes), this keeps the live graph so one
``autograd.grad`` call returns ∂f/∂h for every recorded h at once. Recorded per decoder block i:

* ``states[i]``: residual stream into block i (``states[L]`` = out of the last block) ``[B, T, d]``
* ``heads[i]``: concatenated head outputs entering the output projection ``[B, T, H·dh]``
* ``attn[i]`` / ``mlp[i]``: attention and MLP block outputs ``[B, T, d]``
* ``calls[i]``: the (args, kwargs) block i was called with, to re-run it for graph edges.
* ``attn_calls[i]``: the (args, kwargs) its attention module was called with, hidden states
  removed (graph edges re-run only the attention sub-layer, see graph.py).

Hooks are removed in ``finally``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from faultlens.capture import decoder_layers

_ATTN = ("self_attn", "attn")
_OUT_PROJ = ("o_proj", "c_proj")


@dataclass
class Recording:
    states: list[torch.Tensor | None]
    heads: list[torch.Tensor | None]
    attn: list[torch.Tensor | None]
    mlp: list[torch.Tensor | None]
    calls: list[tuple[tuple, dict] | None]
    attn_calls: list[tuple[tuple, dict] | None] = field(default_factory=list)
    n_heads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _attn_of(block: nn.Module) -> nn.Module:
    return next(getattr(block, n) for n in _ATTN if hasattr(block, n))


@contextmanager
def record(model: nn.Module) -> Iterator[Recording]:
    """Record block inputs/outputs, head outputs and block calls of the forwards inside."""
    layers = decoder_layers(model)
    L = len(layers)
    rec = Recording([None] * (L + 1), [None] * L, [None] * L, [None] * L, [None] * L, [None] * L,
                    n_heads=int(getattr(model.config, "num_attention_heads", 0) or getattr(model.config, "n_head", 0)))
    handles = []

    def pre_block(i):
        def hook(mod, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            rec.calls[i] = (args[1:] if args else (), {k: v for k, v in kwargs.items() if k != "hidden_states"})
            if i == 0:
                rec.states[0] = h
        return hook

    def pre_attn(i):
        def hook(mod, args, kwargs):
            rec.attn_calls[i] = (args[1:] if args else (), {k: v for k, v in kwargs.items() if k != "hidden_states"})
        return hook

    def post_block(i):
        def hook(mod, args, kwargs, out):
            rec.states[i + 1] = _first(out)
        return hook

    def keep(lst, i, pre=False):
        if pre:
            return lambda mod, args: lst.__setitem__(i, args[0])
        return lambda mod, args, out: lst.__setitem__(i, _first(out))

    try:
        for i, block in enumerate(layers):
            attn = _attn_of(block)
            handles.append(block.register_forward_pre_hook(pre_block(i), with_kwargs=True))
            handles.append(block.register_forward_hook(post_block(i), with_kwargs=True))
            handles.append(attn.register_forward_pre_hook(pre_attn(i), with_kwargs=True))
            handles.append(attn.register_forward_hook(keep(rec.attn, i)))
            handles.append(block.mlp.register_forward_hook(keep(rec.mlp, i)))
            proj = next(getattr(attn, n) for n in _OUT_PROJ if hasattr(attn, n))
            handles.append(proj.register_forward_pre_hook(keep(rec.heads, i, pre=True)))
        yield rec
    finally:
        for h in handles:
            h.remove()
