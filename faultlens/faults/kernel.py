"""Interception of the attention kernel, `torch.nn.functional.scaled_dot_product_attention`.

Checks and fault injectors both need the attention *kernel call* of each layer: the q/k/v the
kernel received, its mask, scale and dropout, and what it returned. We get it without editing
any model code: each attention module's ``forward`` is wrapped (an instance attribute, removed
again when the last hook goes) so that, while it runs, a `TorchFunctionMode` sees every SDPA
call it makes. Hugging Face models with ``attn_implementation="sdpa"`` and hand-written modules
that call `F.scaled_dot_product_attention` are covered; a module that computes attention by hand
is not (its kernel-level checks are skipped and say so).

Hooks on a module run in three stages per call:
  * ``args``   ``fn(call) -> None``: edit the call (upstream bugs: a wrong mask, a wrong scale);
  * observers see the call after the ``args`` stage, and its final output;
  * ``kernel`` ``fn(call, compute) -> out``: replace or wrap the computation (kernel bugs).
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

_SDPA = F.scaled_dot_product_attention
_current: contextvars.ContextVar = contextvars.ContextVar("faultlens_attn_module", default=None)
_HOOKS_ATTR = "_faultlens_kernel_hooks"


@dataclass
class KernelCall:
    """One SDPA call. q ``[B, H, T, dh]``, k/v ``[B, Hkv, S, dh]``; mask bool (True = attend) or additive."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    attn_mask: torch.Tensor | None = None
    dropout_p: float = 0.0
    is_causal: bool = False
    scale: float | None = None
    enable_gqa: bool = False
    layer: int = 0
    module: Any = None

    def kwargs(self) -> dict:
        kw = dict(attn_mask=self.attn_mask, dropout_p=self.dropout_p, is_causal=self.is_causal, scale=self.scale)
        if self.enable_gqa:
            kw["enable_gqa"] = True
        return kw

    def replace(self, **kw) -> "KernelCall":
        return dataclasses.replace(self, **kw)

    @property
    def effective_scale(self) -> float:
        return self.scale if self.scale is not None else 1.0 / math.sqrt(self.q.shape[-1])


def sdpa(call: KernelCall) -> torch.Tensor:
    """The plain kernel on a call (the default computation)."""
    return _SDPA(call.q, call.k, call.v, **call.kwargs())


def allowed_mask(call: KernelCall) -> torch.Tensor:
    """Boolean ``[B|1, 1|H, T, S]`` mask, True where query t may attend key s (mask and causal flag merged)."""
    T, S = call.q.shape[-2], call.k.shape[-2]
    allowed = torch.ones(1, 1, T, S, dtype=torch.bool, device=call.q.device)
    if call.attn_mask is not None:
        m = call.attn_mask
        m = m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2
        allowed = allowed & m
    if call.is_causal:  # torch aligns is_causal top-left: query t sees keys <= t
        allowed = allowed & torch.ones(T, S, dtype=torch.bool, device=call.q.device).tril()
    return allowed


def expand_kv(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """KV heads ``[B, Hkv, S, dh]`` → ``[B, H, S, dh]`` the GQA way (each KV head serves H/Hkv adjacent query heads)."""
    return x.repeat_interleave(n_heads // x.shape[1], dim=1) if x.shape[1] != n_heads else x


def manual_attention(call: KernelCall, scores_fn: Callable | None = None, probs_fn: Callable | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
    """Eager attention on a call, with optional edits to scores and probabilities (for planting faults)."""
    q, k, v = call.q, expand_kv(call.k, call.q.shape[1]), expand_kv(call.v, call.q.shape[1])
    if dtype is not None:
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    s = (q @ k.transpose(-1, -2)) * call.effective_scale  # [B, H, T, S]
    if scores_fn is not None:
        s = scores_fn(s)
    allowed = allowed_mask(call)
    if probs_fn is None:
        s = s.masked_fill(~allowed, float("-inf"))
        p = torch.softmax(s.float(), dim=-1).to(s.dtype)
    else:
        p = probs_fn(s, allowed)
    if call.dropout_p > 0:
        p = F.dropout(p, call.dropout_p)
    return (p @ v).to(call.q.dtype)


@dataclass
class KernelRecord:
    """What an observer saw: the call after the `args` stage, its output, and a way to rerun the kernel stage."""

    call: KernelCall
    out: torch.Tensor
    rerun: Callable[[KernelCall], torch.Tensor]
    ops: list = field(default_factory=list)


@dataclass
class _Hook:
    stage: str  # "args" | "observe" | "kernel"
    fn: Callable


class _Interceptor(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        module = _current.get()
        if func is not _SDPA or module is None:
            return func(*args, **kwargs)
        return _run_call(module, *args, **kwargs)


def _run_call(module, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    hooks: list[_Hook] = getattr(module, _HOOKS_ATTR, [])
    counter = module.__dict__.setdefault("_faultlens_call_index", [0])
    call = KernelCall(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                      layer=getattr(module, "_faultlens_layer", 0) + counter[0], module=module)
    counter[0] += 1
    for h in hooks:
        if h.stage == "args":
            h.fn(call)
    kernel_hooks = [h.fn for h in hooks if h.stage == "kernel"]

    def chain(c: KernelCall, i: int = 0) -> torch.Tensor:
        if i == len(kernel_hooks):
            return sdpa(c)
        return kernel_hooks[i](c, lambda c2: chain(c2, i + 1))

    out = chain(call)
    for h in hooks:
        if h.stage == "observe":
            h.fn(KernelRecord(call, out.detach(), lambda c: chain(c)))
    return out


def _wrapped_forward(module: nn.Module, orig: Callable) -> Callable:
    def forward(*args, **kwargs):
        token = _current.set(module)
        module.__dict__["_faultlens_call_index"] = [0]
        try:
            with _Interceptor():
                return orig(*args, **kwargs)
        finally:
            _current.reset(token)

    forward._faultlens_orig = orig
    return forward


class HookHandle:
    """Removes one kernel hook; unwraps the module when its last hook is gone."""

    def __init__(self, module: nn.Module, hook: _Hook) -> None:
        self.module, self.hook = module, hook

    def remove(self) -> None:
        hooks = getattr(self.module, _HOOKS_ATTR, None)
        if hooks is None or self.hook not in hooks:
            return
        hooks.remove(self.hook)
        if not hooks:
            del self.module.__dict__[_HOOKS_ATTR]
            self.module.__dict__.pop("forward", None)
            self.module.__dict__.pop("_faultlens_call_index", None)
            self.module.__dict__.pop("_faultlens_layer", None)


def add_kernel_hook(module: nn.Module, stage: str, fn: Callable, layer: int = 0) -> HookHandle:
    """Attach `fn` at `stage` to every SDPA call `module.forward` makes. `layer` labels its calls."""
    if stage not in ("args", "observe", "kernel"):
        raise ValueError(f"unknown kernel hook stage {stage!r}")
    if _HOOKS_ATTR not in module.__dict__:
        module.__dict__[_HOOKS_ATTR] = []
        module.__dict__["_faultlens_layer"] = layer
        module.__dict__["forward"] = _wrapped_forward(module, module.forward)
    hook = _Hook(stage, fn)
    hooks = module.__dict__[_HOOKS_ATTR]
    # args hooks run in insertion order; observers always after every args hook
    hooks.append(hook)
    hooks.sort(key=lambda h: {"args": 0, "kernel": 1, "observe": 2}[h.stage])
    return HookHandle(module, hook)
