"""Positional Encoding injectors: omitted PE, shifted positions in cached decoding, clamped positions."""

from __future__ import annotations

import torch
from torch import nn

from faultlens.faults.inject.base import injector, needs


def _rotary_modules(t) -> list[nn.Module]:
    return [m for n, m in t.module.named_modules() if "rotary" in n.split(".")[-1].lower()]


def _position_tables(t) -> list[nn.Embedding]:
    names = ("wpe", "position_embeddings", "embed_positions")
    return [m for n, m in t.module.named_modules() if isinstance(m, nn.Embedding) and n.split(".")[-1] in names]


def _pe_sites(t):
    return _rotary_modules(t) or _position_tables(t)


def _positional(t):
    return needs(bool(t.positional) and bool(_pe_sites(t)), "needs a positional encoding (rotary module or position table)")


def _edit_positions(t, undo, edit) -> None:
    """Rewrite the integer position tensor fed to every rotary module / position table."""

    def pre(_m, args, kwargs):
        args = list(args)
        for i, a in enumerate(args):
            if isinstance(a, torch.Tensor) and not a.is_floating_point():
                args[i] = edit(a)
                return tuple(args), kwargs
        for k, a in kwargs.items():
            if isinstance(a, torch.Tensor) and not a.is_floating_point():
                kwargs[k] = edit(a)
                return tuple(args), kwargs
        return None

    for m in _pe_sites(t):
        undo.append(m.register_forward_pre_hook(pre, with_kwargs=True).remove)


@injector("POE", applies=_positional)
def _poe(t, undo):
    rot = _rotary_modules(t)
    if rot:
        def hook(_m, _inp, out):
            cos, sin = out
            return torch.ones_like(cos), torch.zeros_like(sin)  # rotation by 0: no position information
        for m in rot:
            undo.append(m.register_forward_hook(hook).remove)
        return
    for emb in _position_tables(t):
        saved = emb.weight.detach().clone()
        with torch.no_grad():
            emb.weight.zero_()
        undo.append(lambda emb=emb, saved=saved: emb.weight.data.copy_(saved))


@injector("PSI", applies=lambda t: _positional(t) or needs(t.supports_cache, "needs cached decoding"))
def _psi(t, undo):
    delta = 1
    _edit_positions(t, undo, lambda p: p + delta if int(p.min()) > 0 else p)  # only decode steps (past > 0)


@injector("PTL", applies=_positional)
def _ptl(t, undo):
    cutoff = 6
    _edit_positions(t, undo, lambda p: p.clamp(max=cutoff))
