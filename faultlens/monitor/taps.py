"""Read a model's internals on the monitor's probe batch, whatever the model is.

A tap runs one no-grad forward and returns `Internals` with capture-style names. Organism
models record their own attention (`forward(record=...)`); Hugging Face models go through
`faultlens.capture`. Taps are registered by name and picked by `tap_for(model)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from faultlens.registry import Registry

taps: Registry[Callable[[nn.Module, Tensor, Sequence[int]], Internals]] = Registry("monitor tap", "monitor-taps")


@dataclass
class Internals:
    """What one probe forward exposed. Per-layer dicts are keyed by layer index.

    Attributes:
        logits: ``[B, T, V]``.
        pattern: attention probabilities ``[B, H, T, S]``.
        q / k: ``[B, H, T, dh]`` / ``[B, Hkv, S, dh]`` after positional rotation.
        scaling: the attention's logit scale per layer.
        resid_pre / resid_post: residual stream into / out of the block ``[B, T, d]``.
        attn_out: the attention branch output ``[B, T, d]``.
        causal: whether the model's attention is causal.
    """

    logits: Tensor
    n_layers: int
    pattern: dict[int, Tensor] = field(default_factory=dict)
    q: dict[int, Tensor] = field(default_factory=dict)
    k: dict[int, Tensor] = field(default_factory=dict)
    scaling: dict[int, float] = field(default_factory=dict)
    resid_pre: dict[int, Tensor] = field(default_factory=dict)
    resid_post: dict[int, Tensor] = field(default_factory=dict)
    attn_out: dict[int, Tensor] = field(default_factory=dict)
    causal: bool = True


def _fill(out: Internals, rec: dict, layers: Sequence[int]) -> Internals:
    for i in layers:
        p = f"blocks.{i}"
        out.pattern[i] = rec.get(f"{p}.attn.pattern")
        out.q[i], out.k[i] = rec.get(f"{p}.attn.q"), rec.get(f"{p}.attn.k")
        meta = rec.get(f"{p}.attn.meta") or {}
        out.scaling[i] = float(meta.get("scaling") or out.q[i].shape[-1] ** -0.5)
        out.causal = bool(meta.get("causal", True))
        out.resid_pre[i], out.resid_post[i] = rec.get(f"{p}.resid_pre"), rec.get(f"{p}.resid_post")
        out.attn_out[i] = rec.get(f"{p}.attn.out")
    return out


@taps.register("organism")
def organism_tap(model: nn.Module, x: Tensor, layers: Sequence[int]) -> Internals:
    """`OrganismLM`: its attention records itself when asked (no hooks, no recompute)."""
    logits = model(x, record=set(layers))
    out = Internals(logits=logits.detach(), n_layers=model.cfg.n_layer)
    out = _fill(out, model.records, layers)
    model.records = {}
    return out


@taps.register("hf")
def hf_tap(model: nn.Module, x: Tensor, layers: Sequence[int]) -> Internals:
    """Any transformers causal LM, through `faultlens.capture` hook points."""
    from faultlens.capture import capture, decoder_layers

    names = []
    for i in layers:
        names += [f"blocks.{i}.{n}" for n in ("attn.pattern", "attn.q", "attn.k", "attn.meta",
                                               "resid_pre", "resid_post", "attn.out")]
    with capture(model, names) as rec:
        logits = model(input_ids=x).logits
    out = Internals(logits=logits.detach(), n_layers=len(decoder_layers(model)))
    rec = {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in rec.items()}
    return _fill(out, rec, layers)


def n_layers_of(model: nn.Module) -> int:
    cfg = getattr(model, "cfg", None) or getattr(model, "config", None)
    for name in ("n_layer", "num_hidden_layers"):
        if getattr(cfg, name, None):
            return int(getattr(cfg, name))
    return 0


def tap_for(model: nn.Module) -> Callable[[nn.Module, Tensor, Sequence[int]], Internals]:
    from faultlens.organisms.model import OrganismLM

    return taps.get("organism" if isinstance(model, OrganismLM) else "hf")


@torch.no_grad()
def read_internals(model: nn.Module, x: Tensor, layers: Sequence[int]) -> Internals:
    """One eval-mode forward of `x` ``[B, T]``; the model's train/eval mode is restored."""
    was = model.training
    model.eval()
    try:
        return tap_for(model)(model, x, layers)
    finally:
        model.train(was)
