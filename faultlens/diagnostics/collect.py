"""Run a model once under `capture` and keep only per-layer attention statistics.

The reducer passed to `capture` sees each layer's q, k, mask and meta as the kernel produces
them (meta is emitted last), computes that layer's statistics at once, and drops q/k, so a long
input never holds more than one layer's tensors. ``mode="eager"`` computes the same numbers from
the materialised pattern with the pure functions in `metrics` / `position` (the reference the
streaming path is tested against).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from faultlens.diagnostics import metrics as M
from faultlens.diagnostics import position as P
from faultlens.diagnostics.stream import StreamConfig, attention_stats, visible_block
from faultlens.errors import FaultlensError


@dataclass(frozen=True)
class CollectConfig:
    """What one collection pass computes.

    Attributes:
        layers: block indices to analyse (None = all).
        mode: "stream" (from q/k in blocks, no full pattern) or "eager" (materialised pattern).
        block: queries per streamed block; the tile is ``[B, H, block, S + block]`` floats
            (64 was fastest on CPU at S = 2048).
        mass: sink mass, position profile, key-span mass, redundancy (same pass when streaming).
        residual: token uniformity, effective rank and lazy cosine from the residual stream.
        keep_patterns: also return the patterns ``[B, H, T, S]`` (eager mode only; heat maps).
        rank_tokens: effective rank from at most this many evenly spaced tokens (None = all);
            its eigendecomposition is cubic and dominated the time on long inputs.
    """

    layers: tuple[int, ...] | None = None
    mode: str = "stream"
    block: int = 64
    mass: bool = True
    residual: bool = True
    keep_patterns: bool = False
    rank_tokens: int | None = 128


def _eager_layer_stats(pattern: Tensor, q: Tensor, k: Tensor, mask, meta: dict, key_mask, spans, mass: bool) -> dict:
    """Same keys as `attention_stats`, from the materialised pattern."""
    B, H, T, S = pattern.shape
    vis = visible_block(mask, T, S, 0, S, key_mask, meta.get("sliding_window"), pattern.device)  # [B|1, 1, T, S]
    ent = M.normalized_entropy(pattern, visible=vis)
    out = {"entropy": ent, "max_logit": M.max_attention_logit(q, k, meta["scaling"], vis),
           "n_visible": vis.sum(-1).float().expand(B, 1, T)}
    if mass:
        p = pattern.float().masked_fill(~vis, 0.0)
        out["sink_mass"] = M.sink_mass(p, visible=vis)
        uni = vis.float() / vis.sum(-1, keepdim=True).clamp_min(1)  # uniform attention over visible keys
        out["sink_baseline"] = M.sink_mass(uni.expand(B, 1, T, S), visible=vis)
        out["relative"] = P.position_profile(p, key_mask, visible=vis)["relative"]
        out["redundancy"] = torch.stack([P.head_redundancy(p[b:b + 1], visible=vis[b:b + 1] if vis.shape[0] > 1 else vis)
                                         for b in range(B)])  # [B, H, H]
        if spans is not None:
            sm = P.key_span_mass(p, spans[0], spans[1])
            out["span_mass"] = sm.masked_fill(out["n_visible"].expand_as(sm) == 0, float("nan"))
    return out


class _Reducer:
    """``fn(name, tensor)`` for `capture`: turns each layer's tensors into statistics."""

    def __init__(self, cfg: CollectConfig, key_mask: Tensor, spans) -> None:
        self.cfg, self.key_mask, self.spans = cfg, key_mask, spans
        self.stash: dict[str, Any] = {}

    def __call__(self, name: str, value: Any) -> Any:
        parts = name.split(".")
        what = ".".join(parts[2:])
        if what in ("attn.q", "attn.k", "attn.mask", "resid_pre"):
            self.stash[name] = value
            return None
        prefix = ".".join(parts[:2])
        if what == "attn.meta":
            if self.cfg.mode == "eager":  # wait for the pattern, emitted right after
                self.stash[name] = value
                return value
            q, k = self.stash.pop(f"{prefix}.attn.q"), self.stash.pop(f"{prefix}.attn.k")
            mask = self.stash.pop(f"{prefix}.attn.mask", None)
            return attention_stats(q, k, value["scaling"], mask, self.key_mask, value.get("sliding_window"),
                                   value.get("softcap"), self.spans, StreamConfig(self.cfg.block, self.cfg.mass))
        if what == "attn.pattern":
            q, k = self.stash.pop(f"{prefix}.attn.q"), self.stash.pop(f"{prefix}.attn.k")
            mask, meta = self.stash.pop(f"{prefix}.attn.mask", None), self.stash.pop(f"{prefix}.attn.meta")
            out = _eager_layer_stats(value, q, k, mask, meta, self.key_mask, self.spans, self.cfg.mass)
            if self.cfg.keep_patterns:
                out["pattern"] = value.float().clone()
            return out
        if what == "attn.out":
            x = self.stash.pop(f"{prefix}.resid_pre")
            # He et al. 2024: similarity of the residual before and after adding the attention output
            return M.lazy_cosine(x, x + value, self.key_mask)
        if what == "resid_post":
            return {"token_uniformity": M.token_uniformity(value, self.key_mask),
                    "effective_rank": M.effective_rank(value, self.key_mask, self.cfg.rank_tokens)}
        return value


def layer_points(n_layers: int, cfg: CollectConfig) -> list[str]:
    layers = range(n_layers) if cfg.layers is None else cfg.layers
    pts = []
    for i in layers:
        if not 0 <= i < n_layers:
            raise FaultlensError(f"Layer {i} does not exist; the model has layers 0..{n_layers - 1}.")
        pts += [f"blocks.{i}.attn.{p}" for p in ("q", "k", "mask", "meta")]
        if cfg.mode == "eager":
            pts.append(f"blocks.{i}.attn.pattern")
        if cfg.residual:
            pts += [f"blocks.{i}.resid_pre", f"blocks.{i}.attn.out", f"blocks.{i}.resid_post"]
    return pts


@torch.inference_mode()
def collect(adapter, batch: dict[str, Tensor], cfg: CollectConfig = CollectConfig(),
            spans: tuple[Tensor, Tensor] | None = None) -> dict[int, dict[str, Tensor]]:
    """Per-layer statistics of one forward over `batch` (``input_ids``, ``attention_mask``).

    Returns:
        ``{layer: {"entropy", "max_logit", "n_visible", "sink_mass", "relative", "redundancy",
        ["span_mass"], ["token_uniformity", "effective_rank", "lazy_cos"], ["pattern"]}}`` with
        the shapes documented in `stream.attention_stats`; residual stats are ``[B]``.
    """
    if cfg.mode not in ("stream", "eager"):
        raise FaultlensError(f"Unknown attention mode {cfg.mode!r}; use 'stream' or 'eager'.")
    from faultlens.capture import decoder_layers

    model = adapter.model
    n_layers = len(decoder_layers(model))
    key_mask = batch["attention_mask"]
    red = _Reducer(cfg, key_mask, spans)
    kw = {"logits_to_keep": 1} if getattr(adapter, "_has_keep", False) else {}
    pos = (key_mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, T] so left padding changes nothing
    with adapter.capture(layer_points(n_layers, cfg), red) as got:
        model(input_ids=batch["input_ids"], attention_mask=key_mask, position_ids=pos, use_cache=False, **kw)
    out: dict[int, dict[str, Tensor]] = {}
    for name, val in got.items():
        parts = name.split(".")
        i, what = int(parts[1]), ".".join(parts[2:])
        d = out.setdefault(i, {})
        if what in ("attn.meta", "attn.pattern") and isinstance(val, dict) and "entropy" in val:
            d.update(val)
        elif what == "attn.out":
            d["lazy_cos"] = val
        elif what == "resid_post":
            d.update(val)
    return dict(sorted(out.items()))


def key_spans_for(adapter, texts: Sequence[str], char_spans: Sequence[tuple[int, int] | None]) -> tuple[Tensor, Tensor]:
    """Token spans ``(start [B], end [B])`` of the tokens overlapping each text's character span.

    Indices refer to `adapter.tokenize_batch(texts)` (right padding, special tokens as the adapter
    adds them). A text without a span gets the empty span (0, 0).
    """
    starts, ends = [], []
    for text, span in zip(texts, char_spans):
        if span is None:
            starts.append(0), ends.append(0)
            continue
        a, b = span
        enc = adapter.tokenizer(text, add_special_tokens=adapter.add_special_tokens, return_offsets_mapping=True)
        hit = [j for j, (x, y) in enumerate(enc["offset_mapping"]) if y > x and x < b and y > a]
        if not hit:
            raise FaultlensError(f"Key span {span} covers no token of {text[:40]!r}; give character offsets inside the text.")
        starts.append(hit[0]), ends.append(hit[-1] + 1)
    return torch.tensor(starts), torch.tensor(ends)
