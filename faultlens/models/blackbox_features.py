"""Black-box failure features from what an OpenAI-compatible server returns (token logprobs, text).

Pure functions, so the predictor and the adapter share one definition; see `OpenAIAdapter.blackbox_features`.
"""

from __future__ import annotations

import math
from typing import Sequence


def topk_entropy(top: Sequence[float]) -> float:
    """Entropy (nats) of a next-token distribution known only through its top-k log-probs.

    The unseen mass r = 1 − Σ p_i is lumped into one outcome: H ≈ −Σ p_i log p_i − r log r,
    a lower bound on the true entropy that is exact when the top-k cover the support.
    """
    ps = [math.exp(v) for v in top]
    r = max(0.0, 1.0 - sum(ps))
    return -sum(p * math.log(p) for p in ps if p > 0) - (r * math.log(r) if r > 0 else 0.0)


def logprob_features(tokens: list[tuple[float, tuple[float, ...]]] | None) -> dict[str, float]:
    """Answer-position and whole-response uncertainty from (token log-prob, top-k log-probs) rows; NaN if unknown."""
    nan = float("nan")
    keys = ("bb.response.tokens", "bb.topk_entropy", "bb.top1_logprob", "out.top2_margin", "bb.logprob.mean",
            "bb.logprob.min", "bb.entropy.mean", "bb.entropy.max")
    out = dict.fromkeys(keys, nan)
    if tokens is None:
        return out
    out["bb.response.tokens"] = float(len(tokens))
    if not tokens:
        return out
    first = tokens[0][1]  # top-k at the answer position, sorted descending
    if first:
        z = max(first)
        ps = [math.exp(v - z) for v in first]
        ps = [p / sum(ps) for p in ps]  # renormalised over what the API shows, as the white-box extractor does
        out["bb.topk_entropy"] = -sum(p * math.log(p) for p in ps if p > 0) / math.log(len(ps)) if len(ps) > 1 else 0.0
        out["bb.top1_logprob"] = first[0]
        out["out.top2_margin"] = first[0] - first[1] if len(first) > 1 else nan
    lps = [v for v, _ in tokens]
    ents = [topk_entropy(top) for _, top in tokens if top]
    out.update({"bb.logprob.mean": sum(lps) / len(lps), "bb.logprob.min": min(lps)})
    if ents:
        out.update({"bb.entropy.mean": sum(ents) / len(ents), "bb.entropy.max": max(ents)})
    return out


def repeat_fraction(words: Sequence[str]) -> float:
    """Share of word trigrams that already occurred earlier in the text (degenerate looping)."""
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0
