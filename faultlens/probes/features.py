"""Per-case features captured during a white-box probe run (what the failure predictor learns from).

Extractors are registered functions ``fn(adapter, cases) -> list[dict[name, value]]`` (one dict
per case, in order). The runner calls every registered extractor on each chunk of cases and
stores the values as `Feature` rows in the same transaction as the chunk's results. Capabilities
register their own extractors in their own modules (listed in `_PROVIDERS`).
"""

from __future__ import annotations

import importlib
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from faultlens.registry import Registry
from faultlens.types import Case

Extractor = Callable[[object, Sequence[Case]], list[dict[str, float]]]
case_features: Registry[Extractor] = Registry("feature extractor", "feature-extractors")

_PROVIDERS = ("faultlens.diagnostics.case_features", "faultlens.predict.case_features")


def load_providers() -> None:
    for mod in _PROVIDERS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def key_token_span(adapter, case: Case) -> tuple[int, int] | None:
    """Token index range [start, end) of the case's key fact (meta['key_span'] in characters)."""
    span = case.meta.get("key_span")
    if not span:
        return None
    ids_before = adapter.encode(case.prompt[: span[0]].rstrip(" ")) if span[0] > 0 else adapter.encode("x")[:-1]
    ids_through = adapter.encode(case.prompt[: span[1]])
    return len(ids_before), max(len(ids_before) + 1, len(ids_through))


@case_features.register("output")
@torch.inference_mode()
def output_features(adapter, cases: Sequence[Case]) -> list[dict[str, float]]:
    """Next-token distribution at the answer position: entropy, top-2 margin; prompt length; key position.

    One batched forward over the prompts (right padding; the answer position is each row's last
    real token).
    """
    batch = adapter.tokenize_batch([c.prompt for c in cases])
    logits = adapter.model(**batch).logits  # [B, T, V]
    last = batch["attention_mask"].sum(-1) - 1  # [B]
    lp = F.log_softmax(logits[torch.arange(len(cases)), last].float(), dim=-1)  # [B, V]
    p = lp.exp()
    ent = -(p * lp).sum(-1) / math.log(lp.shape[-1])
    top2 = lp.topk(2, dim=-1).values
    out = []
    for i, c in enumerate(cases):
        n = int(last[i]) + 1
        feats = {"out.entropy": float(ent[i]), "out.top2_margin": float(top2[i, 0] - top2[i, 1]), "prompt.n_tokens": float(n)}
        span = key_token_span(adapter, c)
        if span is not None:
            feats["key.position_frac"] = span[0] / max(1, n - 1)
            feats["key.distance"] = float(n - span[1])
        out.append(feats)
    return out
