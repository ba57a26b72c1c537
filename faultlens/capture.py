"""Named hook points on any Hugging Face causal LM, captured inside a `with` block.

Hook names are dotted and double as store keys:

| name                        | tensor (shape)                                                    |
|-----------------------------|-------------------------------------------------------------------|
| ``embed``                   | input embeddings fed to block 0 ``[B, T, d]``                     |
| ``blocks.{i}.resid_pre``    | residual stream into block i ``[B, T, d]``                        |
| ``blocks.{i}.resid_post``   | residual stream out of block i ``[B, T, d]``                      |
| ``blocks.{i}.attn.out``     | attention block output (after o_proj) ``[B, T, d]``               |
| ``blocks.{i}.mlp.out``      | MLP output ``[B, T, d]``                                          |
| ``blocks.{i}.attn.q``       | queries after RoPE ``[B, H, T, dh]``                              |
| ``blocks.{i}.attn.k/.v``    | keys after RoPE / values, KV heads ``[B, Hkv, S, dh]``            |
| ``blocks.{i}.attn.mask``    | additive or boolean mask the kernel received (or None)            |
| ``blocks.{i}.attn.pattern`` | attention probabilities ``[B, H, T, S]`` (computed eagerly)        |
| ``blocks.{i}.attn.meta``    | dict: scaling, num_key_value_groups, sliding_window, softcap      |
| ``final``                   | output of the final norm ``[B, T, d]``                            |

q/k/v/pattern come from wrapping the model's attention *function* (transformers'
`AttentionInterface`), not its modules: we register two extra implementation names that capture
and then call the model's own eager or SDPA kernel, and point this model's config at them only
for the duration of the block. Nothing global changes behaviour, the weights are never touched,
and every hook and config value is restored in ``finally``.

Pass ``fn(name, tensor) -> value`` to reduce each tensor as it is produced (e.g. per-head
statistics): only the return value is kept, so long inputs need not hold every layer's q/k.
"""

from __future__ import annotations

import fnmatch
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from faultlens.errors import FaultlensError

_ATTN_CHILD = ("self_attn", "attn", "attention", "self_attention")
_MLP_CHILD = ("mlp", "feed_forward", "ffn")
_FINAL_NORM = ("norm", "ln_f", "final_layer_norm", "final_norm")

# module -> active session; only populated inside `capture`.
_SESSIONS: dict[int, "_Session"] = {}


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of decoder blocks (GPT-2 `transformer.h`, Llama `model.layers`, ...)."""
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    for _, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) == n and len(mod) > 0:
            return mod
    raise FaultlensError(f"Cannot find the decoder layers of {type(model).__name__}; it is not a supported architecture.")


def _child(block: nn.Module, names: Sequence[str]) -> nn.Module | None:
    for n in names:
        if hasattr(block, n) and isinstance(getattr(block, n), nn.Module):
            return getattr(block, n)
    return None


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Attention module of each block, in order."""
    return [_child(b, _ATTN_CHILD) for b in decoder_layers(model)]


def final_norm(model: nn.Module) -> nn.Module | None:
    base = getattr(model, model.base_model_prefix, model) if hasattr(model, "base_model_prefix") else model
    return _child(base, _FINAL_NORM)


def hook_point_names(model: nn.Module) -> list[str]:
    """Every concrete hook point name this model offers."""
    names = ["embed", "final"]
    for i in range(len(decoder_layers(model))):
        for p in ("resid_pre", "resid_post", "attn.out", "mlp.out", "attn.q", "attn.k", "attn.v", "attn.mask", "attn.pattern", "attn.meta"):
            names.append(f"blocks.{i}.{p}")
    return names


class _Session:
    def __init__(self, wanted: set[str], fn: Callable | None, store: dict[str, Any], live: bool = False) -> None:
        self.wanted, self.fn, self.store, self.live = wanted, fn, store, live

    def emit(self, name: str, value: Any) -> None:
        if name not in self.wanted:
            return
        if isinstance(value, torch.Tensor) and not self.live:
            value = value.detach()
        self.store[name] = self.fn(name, value) if self.fn is not None else value


def _original_kernel(module: nn.Module, base_impl: str) -> Callable:
    """The kernel the model would have used: its own module-level eager function, or SDPA."""
    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if base_impl == "eager":
        if eager is None:
            raise FaultlensError(f"{type(module).__name__} has no eager_attention_forward; unsupported attention.")
        return eager
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS[base_impl]


def as_additive_mask(
    mask: torch.Tensor | None, query: torch.Tensor, key: torch.Tensor,
    sliding_window: int | None = None, is_causal: bool = True,
) -> torch.Tensor | None:
    """The float mask an eager kernel needs, from what an SDPA kernel was given.

    SDPA masks are None (pure causal, the kernel's `is_causal` path) or boolean (True = attend);
    eager kernels add a float mask ``[B|1, 1, T, S]`` with the dtype's minimum where masked.
    Queries are the last T of the S key positions (a KV cache puts earlier keys first).
    """
    T, S = query.shape[-2], key.shape[-2]
    neg = torch.finfo(query.dtype).min
    if mask is None:
        if not is_causal or T == 1 and sliding_window is None:
            return None
        qpos = torch.arange(S - T, S, device=query.device)[:, None]  # [T, 1]
        kpos = torch.arange(S, device=query.device)[None, :]  # [1, S]
        allowed = kpos <= qpos
        if sliding_window:
            allowed = allowed & (qpos - kpos < sliding_window)
        mask = allowed[None, None]  # [1, 1, T, S]
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=query.dtype, device=query.device).masked_fill(~mask, neg)
    return mask


def _make_capturing_kernel(base_impl: str) -> Callable:
    def kernel(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        sess = _SESSIONS.get(id(module))
        orig = _original_kernel(module, base_impl)
        if sess is None:
            return orig(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        prefix = sess.prefix_of[id(module)]
        sess.emit(f"{prefix}.q", query)  # [B, H, T, dh] after RoPE
        sess.emit(f"{prefix}.k", key)  # [B, Hkv, S, dh] after RoPE, incl. cache
        sess.emit(f"{prefix}.v", value)
        sess.emit(f"{prefix}.mask", attention_mask)
        meta = {
            "scaling": scaling if scaling is not None else query.shape[-1] ** -0.5,
            "num_key_value_groups": query.shape[1] // key.shape[1],
            "sliding_window": kwargs.get("sliding_window") or getattr(module, "sliding_window", None),
            "softcap": kwargs.get("softcap"),
            "impl": base_impl,
        }
        sess.emit(f"{prefix}.meta", meta)
        want_pattern = f"{prefix}.pattern" in sess.wanted
        if want_pattern and base_impl != "eager":
            # SDPA never materialises probabilities: run this layer through the model's own eager kernel.
            mask = as_additive_mask(attention_mask, query, key, meta["sliding_window"], getattr(module, "is_causal", True))
            out, weights = _original_kernel(module, "eager")(
                module, query, key, value, mask, scaling=scaling, dropout=dropout, **kwargs)
        else:
            out, weights = orig(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        if want_pattern:
            sess.emit(f"{prefix}.pattern", weights)  # [B, H, T, S]
        return out, weights

    return kernel


def _ensure_registered() -> None:
    """Register 'faultlens_eager' / 'faultlens_sdpa' as extra implementation names (idempotent)."""
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    for base in ("eager", "sdpa"):
        name = f"faultlens_{base}"
        if name not in AttentionMaskInterface._global_mapping:
            AttentionInterface.register(name, _make_capturing_kernel(base))
            AttentionMaskInterface.register(name, AttentionMaskInterface._global_mapping[base])


def _configs(model: nn.Module) -> list:
    """The model's config and any sub-configs sharing the attention setting."""
    seen, out = set(), []
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and id(cfg) not in seen and hasattr(cfg, "_attn_implementation"):
            seen.add(id(cfg))
            out.append(cfg)
    return out


@contextmanager
def capture(
    model: nn.Module, points: Sequence[str], fn: Callable[[str, Any], Any] | None = None, live: bool = False
) -> Iterator[dict[str, Any]]:
    """Capture named hook points during forwards run inside the block.

    Args:
        model: a transformers causal LM (GPT-2, Llama, Mistral, Qwen2, GPT-NeoX families, ...).
        points: hook names; shell patterns allowed (``blocks.*.attn.pattern``).
        fn: optional reducer ``fn(name, tensor) -> value``; its result is stored instead.
        live: keep the tensors' autograd history (attribution differentiates through them);
            by default they are detached, since capture observes.

    Yields:
        A dict filled as the model runs: name → tensor (or reducer output). Values from a later
        forward overwrite earlier ones.

    The model is left exactly as it was (weights, hooks, config), also if the body raises.
    """
    all_names = hook_point_names(model)
    wanted: set[str] = set()
    for p in points:
        hits = fnmatch.filter(all_names, p)
        if not hits:
            raise FaultlensError(f"Unknown hook point {p!r}; e.g. blocks.0.attn.pattern, blocks.*.resid_post, embed, final.")
        wanted.update(hits)
    out: dict[str, Any] = {}
    sess = _Session(wanted, fn, out, live)
    sess.prefix_of = {}
    handles = []
    cfg_saved = []
    layers = decoder_layers(model)
    try:
        needs_kernel = any(n.split(".")[-1] in ("q", "k", "v", "mask", "pattern", "meta") for n in wanted)
        if needs_kernel:
            _ensure_registered()
            for cfg in _configs(model):
                impl = cfg._attn_implementation or "eager"
                if impl not in ("eager", "sdpa"):
                    raise FaultlensError(f"Capture supports eager and sdpa attention, not {impl!r}; load with attn_implementation='sdpa'.")
                cfg_saved.append((cfg, cfg._attn_implementation))
                cfg._attn_implementation_internal = f"faultlens_{impl}"
        for i, block in enumerate(layers):
            attn, mlp = _child(block, _ATTN_CHILD), _child(block, _MLP_CHILD)
            sess.prefix_of[id(attn)] = f"blocks.{i}.attn"
            _SESSIONS[id(attn)] = sess
            handles.append(block.register_forward_pre_hook(_pre_hook(sess, f"blocks.{i}.resid_pre"), with_kwargs=True))
            handles.append(block.register_forward_hook(_out_hook(sess, f"blocks.{i}.resid_post")))
            handles.append(attn.register_forward_hook(_out_hook(sess, f"blocks.{i}.attn.out")))
            if mlp is not None:
                handles.append(mlp.register_forward_hook(_out_hook(sess, f"blocks.{i}.mlp.out")))
        if "embed" in wanted:
            handles.append(layers[0].register_forward_pre_hook(_pre_hook(sess, "embed"), with_kwargs=True))
        norm = final_norm(model)
        if norm is not None:
            handles.append(norm.register_forward_hook(_out_hook(sess, "final")))
        yield out
    finally:
        for h in handles:
            h.remove()
        for attn in attention_modules(model):
            _SESSIONS.pop(id(attn), None)
        for cfg, impl in cfg_saved:
            cfg._attn_implementation_internal = impl


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    return getattr(x, "last_hidden_state", None)


def _pre_hook(sess: _Session, name: str):
    def hook(_mod, args, kwargs):
        t = args[0] if args else kwargs.get("hidden_states")
        if t is not None:
            sess.emit(name, t)

    return hook


def _out_hook(sess: _Session, name: str):
    def hook(_mod, _inp, output):
        t = _first_tensor(output)
        if t is not None:
            sess.emit(name, t)

    return hook
