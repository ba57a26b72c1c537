"""Attach AttnLRP / CP-LRP rules to one model instance, reversibly, inside a `with` block.

Every rule is a forward hook or forward-pre-hook on a specific module instance that swaps the
module's output for the same value with a different backward (see `rules.py`). Nothing global
changes: no class is patched, no transformers module is edited, the attention kernel is whatever
the model uses (eager or SDPA, since gradient scaling at q/k/v is linear it equals scaling inside
the kernel), and every hook is removed in ``finally``.

Rules per architecture family (AttnLRP, Achtibat et al. 2024, Input×Gradient form):

| op                        | attnlrp                     | cp-lrp (Ali et al. 2022)        |
|---------------------------|-----------------------------|---------------------------------|
| RMSNorm / LayerNorm       | 1/σ constant                | same                            |
| SiLU / GELU               | identity rule               | same                            |
| gate ⊙ up (gated MLP)     | ½ to each factor            | same                            |
| q, k  (softmax(qkᵀ)·v)    | gradient ÷4 each            | detached (probabilities const.) |
| v                         | gradient ÷2                 | unchanged (A·v linear in v)     |

The ÷4 at q and k is ½ for the A·V product times ½ for the q·kᵀ product; RoPE is linear in q
and k so scaling before or after it is the same. With cp-lrp on a bias-free model the whole
backward is exact for a degree-1 homogeneous surrogate, so input relevance sums to the target.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

from faultlens.capture import decoder_layers
from faultlens.errors import FaultlensError
from faultlens.registry import Registry
from faultlens.attribution.rules import identity_rule, norm_rule, scale_grad, scale_grad_slices

VARIANTS = ("attnlrp", "cp-lrp")

# family name -> attach(model, variant, handles) that registers this family's hooks
architectures: Registry[Callable[[nn.Module, str, list], None]] = Registry("LRP architecture", "lrp-architectures")

_MODEL_TYPES = {"llama": "gated", "mistral": "gated", "qwen2": "gated", "gpt2": "gpt2"}


def family_of(model: nn.Module) -> str:
    """The rule family of `model`, or a FaultlensError naming the supported architectures."""
    mt = getattr(getattr(model, "config", None), "model_type", None)
    if mt not in _MODEL_TYPES:
        raise FaultlensError(
            f"LRP attribution does not support model_type {mt!r} yet; supported: "
            f"{', '.join(sorted(_MODEL_TYPES))} (incl. the shipped stories260k). Use method='grad_x_input' or 'ig' instead.")
    return _MODEL_TYPES[mt]


def _hook_norm(module: nn.Module, handles: list) -> None:
    centred = isinstance(module, nn.LayerNorm)
    eps = getattr(module, "eps", None)
    if eps is None:
        eps = getattr(module, "variance_epsilon", 1e-6)

    def hook(mod, args, out):
        x = args[0]
        xf = x.float()
        if centred:
            var = xf.var(-1, keepdim=True, unbiased=False)
        else:
            var = xf.pow(2).mean(-1, keepdim=True)
        inv_sigma = (var + eps).rsqrt().to(x.dtype)  # [..., 1]
        w = mod.weight if getattr(mod, "weight", None) is not None else 1.0
        return norm_rule(x, out, w * inv_sigma, centred)

    handles.append(module.register_forward_hook(hook))


def _hook_identity(module: nn.Module, handles: list) -> None:
    if isinstance(module, nn.SiLU) or type(module).__name__ == "SiLUActivation":
        # silu(x) / x = sigmoid(x): one op instead of a stabilised division, exact at x = 0
        handles.append(module.register_forward_hook(lambda mod, args, out: identity_rule(args[0], out, torch.sigmoid(args[0]))))
    else:
        handles.append(module.register_forward_hook(lambda mod, args, out: identity_rule(args[0], out)))


def _hook_out(module: nn.Module, handles: list, fn: Callable) -> None:
    handles.append(module.register_forward_hook(lambda mod, args, out: fn(out)))


def _hook_in(module: nn.Module, handles: list, fn: Callable) -> None:
    handles.append(module.register_forward_pre_hook(lambda mod, args: (fn(args[0]), *args[1:])))


def _norm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.LayerNorm) or type(m).__name__.endswith("RMSNorm")]


def _act_module(mlp: nn.Module, name: str) -> nn.Module:
    act = getattr(mlp, name, None)
    if not isinstance(act, nn.Module):
        raise FaultlensError(f"{type(mlp).__name__}.{name} is not a module; this checkpoint's MLP is not supported by LRP yet.")
    return act


@architectures.register("gated")
def _attach_gated(model: nn.Module, variant: str, handles: list) -> None:
    """Llama / Mistral / Qwen2: RMSNorm, SwiGLU (gate_proj, up_proj, down_proj), q/k/v_proj."""
    for m in _norm_modules(model):
        _hook_norm(m, handles)
    for block in decoder_layers(model):
        attn, mlp = block.self_attn, block.mlp
        _hook_identity(_act_module(mlp, "act_fn"), handles)
        _hook_in(mlp.down_proj, handles, lambda x: scale_grad(x, 0.5))
        if variant == "cp-lrp":
            _hook_out(attn.q_proj, handles, lambda t: t.detach())
            _hook_out(attn.k_proj, handles, lambda t: t.detach())
        else:
            _hook_out(attn.q_proj, handles, lambda t: scale_grad(t, 0.25))
            _hook_out(attn.k_proj, handles, lambda t: scale_grad(t, 0.25))
            _hook_out(attn.v_proj, handles, lambda t: scale_grad(t, 0.5))


def _detach_qk(t, d: int):
    """CP-LRP on GPT-2's fused projection: q and k slices constant, v slice live."""
    return torch.cat([t[..., : 2 * d].detach(), t[..., 2 * d:]], dim=-1)


@architectures.register("gpt2")
def _attach_gpt2(model: nn.Module, variant: str, handles: list) -> None:
    """GPT-2: LayerNorm, GELU MLP (no product), fused c_attn = [q | k | v]."""
    for m in _norm_modules(model):
        _hook_norm(m, handles)
    for block in decoder_layers(model):
        _hook_identity(_act_module(block.mlp, "act"), handles)
        if variant == "cp-lrp":
            _hook_out(block.attn.c_attn, handles, lambda t: _detach_qk(t, t.shape[-1] // 3))
        else:
            _hook_out(block.attn.c_attn, handles, lambda t: scale_grad_slices(t, (0.25, 0.25, 0.5)))


@contextmanager
def lrp_rules(model: nn.Module, variant: str = "attnlrp") -> Iterator[nn.Module]:
    """Inside the block, `model`'s backward is the LRP backward of `variant`.

    Forward values are unchanged (each rule returns the module's own output). All hooks are
    removed on exit, also if the body raises.

    Raises:
        FaultlensError: unknown variant or unsupported architecture.
    """
    if variant not in VARIANTS:
        raise FaultlensError(f"Unknown LRP variant {variant!r}; use one of {', '.join(VARIANTS)}.")
    family = family_of(model)
    handles: list = []
    try:
        architectures.get(family)(model, variant, handles)
        yield model
    finally:
        for h in handles:
            h.remove()
