"""Injectors that edit projection parameters of layer 0: zeroing, tied heads, frozen or unregistered weights."""

from __future__ import annotations

import torch
from torch import nn

from faultlens.faults.inject.base import injector, needs


def _proj0(t):
    return next((p for p in t.projections() if p is not None), None)


def _has_proj(t):
    return needs(_proj0(t) is not None, "no recognisable q/k/v projections")


def _edit(t, undo, kinds, edit) -> None:
    p = _proj0(t)
    for kind in kinds:
        W, b = p.get(kind)
        undo.append(lambda kind=kind, W=W, b=b: p.set(kind, W, b))
        W2, b2 = edit(p, kind, W.clone(), None if b is None else b.clone())
        p.set(kind, W2, b2)


def _zero(kind):
    def fn(t, undo):
        _edit(t, undo, [kind], lambda p, k, W, b: (torch.zeros_like(W), b))
    return fn


injector("QZQ", _has_proj)(_zero("q"))
injector("QZK", _has_proj)(_zero("k"))
injector("QZV", _has_proj)(_zero("v"))


@injector("QTH", applies=lambda t: _has_proj(t) or needs(_proj0(t).n_heads >= 2, "needs >= 2 heads"))
def _qth(t, undo):
    p = _proj0(t)
    kinds = ["q", "k", "v"] if p.n_kv_heads == p.n_heads else ["q"]  # GQA: heads 0 and 1 already share KV

    def tie(p, kind, W, b):
        W[p.head_rows(1)] = W[p.head_rows(0)]
        if b is not None:
            b[p.head_rows(1)] = b[p.head_rows(0)]
        return W, b
    _edit(t, undo, kinds, tie)


@injector("QFG", applies=_has_proj)
def _qfg(t, undo):
    p = _proj0(t)
    seen = set()
    for kind in ("q", "k", "v"):
        for owner, attr in p.params(kind):
            w = getattr(owner, attr)
            if id(w) in seen:
                continue
            seen.add(id(w))
            w.requires_grad_(False)
            undo.append(lambda w=w: w.requires_grad_(True))


@injector("QNR", applies=_has_proj)
def _qnr(t, undo):
    owner, attr = _proj0(t).params("q")[0]
    param = getattr(owner, attr)
    delattr(owner, attr)
    setattr(owner, attr, param.detach().clone())  # a plain tensor attribute: no state dict entry, no grad

    def restore():
        delattr(owner, attr)
        owner.register_parameter(attr, nn.Parameter(param.detach(), requires_grad=param.requires_grad))
    undo.append(restore)
