"""Per-case features the failure predictor adds to what the probe runner already captures.

The runner's built-in "output" extractor stores ``out.entropy``, ``out.top2_margin``,
``prompt.n_tokens``, ``key.position_frac`` and ``key.distance``; attention features
(``attn.entropy.mean.L{i}``, ``attn.sink_mass.L{i}``, ``attn.key_span_mass.L{i}``, ...) come from
the attention-health code (`faultlens.diagnostics.attention_features`). This module registers:

* ``internals``: one forward with the residual stream captured at the answer position (the last
  prompt token): ``resid.norm.L{i}`` (L2 norm of block i's output), ``resid.norm_rel.L{i}`` (that
  norm over the prompt's mean norm in the same layer, scale-free), the logit-lens entropy
  ``lens.entropy.L{i}`` (final norm + unembedding applied to block i's output; nostalgebraist 2020,
  Belrose et al. 2023 arXiv:2303.08112) and ``lens.pred_depth`` (first layer, as a fraction of
  depth, from which the lens top-1 token equals the final one: the "prediction depth" of Baldock
  et al. 2021, arXiv:2106.09647); plus the black-box set an API with ``top_logprobs=20`` would
  give: ``bb.topk_entropy``, ``bb.top1_logprob`` and ``prompt.n_chars``.
* ``attention`` (only when the attention engineer's `faultlens.diagnostics.case_features` does not
  exist): the case's attention features from `attention_features`, with the key span when the
  case has one.

No feature looks at the target or the foil: the label is computed from them, so any feature that
did would leak it.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from faultlens.capture import decoder_layers, final_norm
from faultlens.probes.features import case_features
from faultlens.types import Case

TOP_K = 20  # what OpenAI-style APIs return at most per position (top_logprobs)


def _lm_head(model) -> torch.nn.Module:
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings; the logit lens needs an LM head.")
    return head


@torch.inference_mode()
def internal_features(adapter, prompts: Sequence[str]) -> list[dict[str, float]]:
    """Residual norms, logit-lens entropies / prediction depth and top-k output stats per prompt.

    Args:
        adapter: a white-box adapter (`HFAdapter`).
        prompts: the prompts; features describe the position that predicts the first answer token.

    Returns:
        One dict per prompt (names in the module docstring).
    """
    model = adapter.model
    n_layers = len(decoder_layers(model))
    batch = adapter.tokenize_batch(list(prompts))
    mask = batch["attention_mask"]  # [B, T] right padding
    last = mask.sum(-1) - 1  # [B]
    rows = torch.arange(len(prompts))

    def reduce(name: str, h: torch.Tensor) -> dict[str, torch.Tensor]:
        norms = h.float().norm(dim=-1)  # [B, T]
        mean = (norms * mask).sum(-1) / mask.sum(-1)  # [B]
        return {"h_last": h[rows, last].float(), "norm_last": norms[rows, last], "norm_mean": mean}

    with adapter.capture([f"blocks.{i}.resid_post" for i in range(n_layers)], reduce) as got:
        logits = model(**batch).logits  # [B, T, V]
    final_lp = F.log_softmax(logits[rows, last].float(), dim=-1)  # [B, V]
    vocab = final_lp.shape[-1]
    norm, head = final_norm(model), _lm_head(model)
    lens_top, lens_ent = [], []
    for i in range(n_layers):
        h = got[f"blocks.{i}.resid_post"]["h_last"]  # [B, d]
        # the last block's output already went through nothing but the final norm, so lens L-1 = output
        lp = F.log_softmax(head(norm(h) if norm is not None else h).float(), dim=-1)  # [B, V]
        lens_top.append(lp.argmax(-1))
        lens_ent.append(-(lp.exp() * lp).sum(-1) / math.log(vocab))
    top = torch.stack(lens_top, 1)  # [B, L]
    agree = top == final_lp.argmax(-1, keepdim=True)  # [B, L]
    # prediction depth: first layer from which every later layer agrees with the final top-1
    stable = agree.flip(1).cumprod(1).flip(1)  # [B, L] 1 where this and all later layers agree
    depth = (n_layers - stable.sum(1)).float() / max(1, n_layers - 1)  # [B] 0 = decided at layer 0
    topk = final_lp.topk(min(TOP_K, vocab), dim=-1).values  # [B, k]
    pk = F.softmax(topk, dim=-1)  # renormalised over what the API shows
    topk_ent = -(pk * pk.clamp_min(1e-30).log()).sum(-1) / math.log(topk.shape[-1])
    out = []
    for b, p in enumerate(prompts):
        f = {"prompt.n_chars": float(len(p)), "bb.topk_entropy": float(topk_ent[b]), "bb.top1_logprob": float(topk[b, 0]),
             "lens.pred_depth": float(depth[b])}
        for i in range(n_layers):
            g = got[f"blocks.{i}.resid_post"]
            f[f"resid.norm.L{i}"] = float(g["norm_last"][b])
            f[f"resid.norm_rel.L{i}"] = float(g["norm_last"][b] / g["norm_mean"][b].clamp_min(1e-12))
            f[f"lens.entropy.L{i}"] = float(lens_ent[i][b])
        out.append(f)
    return out


@case_features.register("internals")
def internals_extractor(adapter, cases: Sequence[Case]) -> list[dict[str, float]]:
    """Residual norms, logit-lens entropy and prediction depth, top-20 logprob stats at the answer position."""
    return internal_features(adapter, [c.prompt for c in cases])


def attention_case_features(adapter, cases: Sequence[Case]) -> list[dict[str, float]]:
    """Attention entropy / sink mass / max logit per layer and mass on the case's key span."""
    from faultlens.diagnostics.analyze import attention_features

    spans = [tuple(c.meta["key_span"]) if c.meta.get("key_span") else None for c in cases]
    return attention_features(adapter, [c.prompt for c in cases], spans)


if importlib.util.find_spec("faultlens.diagnostics.case_features") is None:
    # The attention engineer registers these themselves once that module exists; never twice.
    case_features.add("attention", attention_case_features)
