"""Findings drawn from an `AttentionSummary`: one registered rule per failure name.

Categories use the seed's names: "abnormal concentration" (over-focus / dispersion),
"attention sink", "rank collapse", "lazy layer", "position bias", plus "head redundancy".
Thresholds are defaults chosen so a seeded random tiny model and the shipped TinyStories model
raise nothing while planted pathologies (tests/diagnostics) are caught; override them per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from faultlens.diagnostics.analyze import AttentionSummary
from faultlens.registry import Registry
from faultlens.types import Finding


@dataclass(frozen=True)
class FindingThresholds:
    """Where a statistic becomes a finding.

    Attributes:
        over_focus: head mean normalised entropy below this = over-focus (Zhai et al. 2023 collapse).
        dispersion_mean / dispersion_min: head mean above and min above = near-uniform head.
        sink: Gu et al.'s epsilon (0.3), applied to the first-token alpha minus the alpha of
            uniform attention (equal to Gu's alpha on long texts, fair on short ones).
        sink_share_texts / sink_min_texts: a non-initial sink position must recur in this share
            of texts and in at least this many.
        rank_collapse: token uniformity (Dong et al. relative residual) below this.
        lazy_cos: attention in/out residual cosine at or above this = lazy (He et al. 2024) ...
        lazy_loss: ... or skipping the block changes the loss by less than this (nats) while
            the cosine is at least `lazy_cos_loose` (dynamics note: cos >= 0.97 <=> drop-delta <= 0.03).
        redundancy: mean off-diagonal head-pattern cosine of a layer above this.
        recency: share of a layer's mass within `recency_window` tokens above this.
    """

    over_focus: float = 0.1
    dispersion_mean: float = 0.95
    dispersion_min: float = 0.8
    sink: float = 0.3
    sink_share_texts: float = 0.5
    sink_min_texts: int = 2
    rank_collapse: float = 0.05
    lazy_cos: float = 0.99
    lazy_loss: float = 0.01
    lazy_cos_loose: float = 0.95
    redundancy: float = 0.95
    recency: float = 0.9
    recency_window: int = 3


Rule = Callable[[AttentionSummary, FindingThresholds, str], list[Finding]]
finding_rules: Registry[Rule] = Registry("attention finding rule")


def _f(run_id: str, rule: str, category: str, message: str, evidence: dict, severity: str = "warning") -> Finding:
    return Finding(run_id, f"diagnostic:{rule}", category, severity, message, evidence)


@finding_rules.register("concentration")
def over_focus_and_dispersion(s: AttentionSummary, th: FindingThresholds, run_id: str) -> list[Finding]:
    """Heads whose attention collapsed onto one key, or spread uniformly."""
    out = []
    for li, layer in enumerate(s.layers):
        for h in range(s.heads):
            mean, mn = float(s.entropy_mean[li, h]), float(s.entropy_min[li, h])
            ev = {"layer": layer, "head": h, "entropy_mean": mean, "entropy_min": mn,
                  "frac_low": float(s.entropy_frac_low[li, h])}
            if mean < th.over_focus:
                out.append(_f(run_id, "entropy", "abnormal concentration",
                              f"L{layer}.H{h} over-focuses: mean normalised entropy {mean:.3f} < {th.over_focus}",
                              ev | {"kind": "over-focus", "threshold": th.over_focus}))
            elif mean > th.dispersion_mean and mn > th.dispersion_min:
                out.append(_f(run_id, "entropy", "abnormal concentration",
                              f"L{layer}.H{h} is near-uniform (dispersion): mean normalised entropy {mean:.3f}",
                              ev | {"kind": "dispersion", "threshold": th.dispersion_mean}))
    return out


@finding_rules.register("sinks")
def attention_sinks(s: AttentionSummary, th: FindingThresholds, run_id: str) -> list[Finding]:
    """Heads dumping mass on the first token (Gu alpha > eps) or on another recurring position."""
    out = []
    if s.sink_mass is None:
        return out
    for li, layer in enumerate(s.layers):
        for h in range(s.heads):
            a, ex = float(s.sink_mass[li, h]), float(s.sink_excess[li, h])
            if ex > th.sink:
                out.append(_f(run_id, "sinks", "attention sink",
                              f"L{layer}.H{h} is a sink head: queries give position 0 {a:.2f} of their mass "
                              f"({ex:+.2f} over uniform attention)",
                              {"layer": layer, "head": h, "position": 0, "alpha": a, "excess": ex, "threshold": th.sink,
                               "sink_share_layer": float(s.sink_share[li])}))
            for pos, (share, count) in s.sink_positions.get((layer, h), {}).items():
                if pos != 0 and share >= th.sink_share_texts and count >= th.sink_min_texts:
                    out.append(_f(run_id, "sinks", "attention sink",
                                  f"L{layer}.H{h} sinks on position {pos} in {share:.0%} of texts",
                                  {"layer": layer, "head": h, "position": pos, "share_of_texts": share}))
    return out


@finding_rules.register("rank")
def rank_collapse(s: AttentionSummary, th: FindingThresholds, run_id: str) -> list[Finding]:
    """Layers whose residual stream is close to "all tokens equal" (Dong et al. 2021)."""
    if s.token_uniformity is None:
        return []
    return [_f(run_id, "rank", "rank collapse",
               f"L{layer} residual stream is near rank 1: relative distance {float(r):.3f} < {th.rank_collapse}",
               {"layer": layer, "token_uniformity": float(r), "effective_rank": float(s.effective_rank[li])}, "error")
            for li, (layer, r) in enumerate(zip(s.layers, s.token_uniformity)) if float(r) < th.rank_collapse]


@finding_rules.register("lazy")
def lazy_layers(s: AttentionSummary, th: FindingThresholds, run_id: str) -> list[Finding]:
    """Attention blocks that barely change the residual stream or can be skipped for free."""
    out = []
    if s.lazy_cos is None:
        return out
    for li, layer in enumerate(s.layers):
        cos = float(s.lazy_cos[li])
        delta = None if s.skip_loss_delta is None else float(s.skip_loss_delta[li])
        # Random or harmful blocks can have a negative skip delta; lazy means "does nothing",
        # so the loss test needs a near-identity block too.
        if cos >= th.lazy_cos or (cos >= th.lazy_cos_loose and delta is not None and abs(delta) < th.lazy_loss):
            why = f"cosine(in, out) {cos:.3f}" + ("" if delta is None else f", skipping it changes the loss by {delta:+.3f} nats")
            out.append(_f(run_id, "lazy", "lazy layer", f"L{layer} attention is lazy: {why}",
                          {"layer": layer, "cos": cos, "skip_loss_delta": delta, "base_loss": s.base_loss}, "info"))
    return out


@finding_rules.register("redundancy")
def head_redundancy(s: AttentionSummary, th: FindingThresholds, run_id: str) -> list[Finding]:
    """Layers whose heads all attend alike (mean pairwise pattern cosine)."""
    out = []
    if s.redundancy is None or s.heads < 2:
        return out
    eye = torch.eye(s.heads, dtype=torch.bool)
    for li, layer in enumerate(s.layers):
        off = float(s.redundancy[li][~eye].mean())
        if off > th.redundancy:
            out.append(_f(run_id, "redundancy", "head redundancy",
                          f"L{layer} heads are redundant: mean pairwise pattern cosine {off:.3f}",
                          {"layer": layer, "mean_cosine": off, "threshold": th.redundancy}))
    return out


@finding_rules.register("position")
def position_bias(s: AttentionSummary, th: FindingThresholds, run_id: str) -> list[Finding]:
    """Layers that cannot reach context: (nearly) all mass within the last few tokens."""
    out = []
    if s.relative is None:
        return out
    w = th.recency_window
    near = torch.nan_to_num(s.relative[:, :, :w]).sum(-1).mean(-1)  # [L] mean over heads
    for li, layer in enumerate(s.layers):
        if float(near[li]) > th.recency:
            out.append(_f(run_id, "position", "position bias",
                          f"L{layer} puts {float(near[li]):.0%} of its attention on the last {w} tokens (recency)",
                          {"layer": layer, "kind": "recency", "mass_recent": float(near[li]), "window": w}))
    return out


def findings_for(summary: AttentionSummary, run_id: str, th: FindingThresholds = FindingThresholds()) -> list[Finding]:
    """All registered rules applied to one summary."""
    return [f for name in finding_rules.names() for f in finding_rules.get(name)(summary, th, run_id)]
