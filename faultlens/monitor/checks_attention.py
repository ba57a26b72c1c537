"""Attention-health checks on the probe batch: entropy collapse, logit growth, sinks.

The numbers come from the shared metric functions in `faultlens.diagnostics.metrics`; this
file only decides when they are pathological and what to do about it.
"""

from __future__ import annotations

import torch

from faultlens.diagnostics.metrics import (
    entropy_summary,
    max_attention_logit,
    normalized_entropy,
    sink_mass,
)
from faultlens.monitor.check import Alarm, Check, Observation, register


def _visible(pattern: torch.Tensor, causal: bool) -> torch.Tensor | None:
    """Bidirectional attention sees every key; the metrics default to causal visibility."""
    if causal:
        return None
    B, H, T, S = pattern.shape
    return torch.ones(1, 1, T, S, dtype=torch.bool, device=pattern.device)


@register
class AttentionEntropy(Check):
    """Attention-entropy collapse: some head's normalised entropy falls near 0 (Zhai et al. 2023)."""

    name = "attention_entropy"

    def observe(self, obs: Observation):
        ins = obs.internals
        events, worst, where = [], float("inf"), None
        for i, p in ins.pattern.items():
            ent = normalized_entropy(p, visible=_visible(p, ins.causal))  # [B, H, T]
            mean = entropy_summary(ent)["mean"]  # [H]
            events.append((f"attn.entropy.min.L{i}", float(mean.min())))
            h = int(torch.nan_to_num(mean, nan=1.0).argmin())
            if float(mean[h]) < worst:
                worst, where = float(mean[h]), (i, h)
        events.append(("attn.entropy.min", worst))
        self.history.append((obs.step, worst))
        if not self._persist(worst < self.t.entropy_floor):
            return events, None
        first = self.history[0][1]
        return events, Alarm(
            "entropy collapse", "error",
            f"Attention entropy collapsed: layer {where[0]} head {where[1]} has normalised entropy "
            f"{worst:.3f} (was {first:.3f} at step {self.history[0][0]}; trend {self.trend():+.3f}/100 steps).",
            cause="attention logits grew until softmax became one-hot (large LR or unbounded q·k), "
                  "which stalls learning and precedes loss spikes",
            mitigation="QK-LayerNorm, σReparam on the attention projections, or a lower learning rate / longer warmup",
            evidence={"layer": where[0], "head": where[1], "min_norm_entropy": worst, "initial": first,
                      "trend_per_100_steps": self.trend(), "threshold": self.t.entropy_floor},
        )


@register
class AttentionLogit(Check):
    """Attention-logit growth: the largest q·k/√d_h leaves the healthy range (Dehghani et al. 2023)."""

    name = "attention_logit"

    def observe(self, obs: Observation):
        ins = obs.internals
        events, worst, where = [], float("-inf"), None
        for i, q in ins.q.items():
            mask = None if ins.causal else torch.ones(1, 1, q.shape[2], ins.k[i].shape[2], dtype=torch.bool)
            ml = max_attention_logit(q, ins.k[i], ins.scaling[i], mask).amax(0)  # [H]
            events.append((f"attn.max_logit.L{i}", float(ml.max())))
            if float(ml.max()) > worst:
                worst, where = float(ml.max()), (i, int(ml.argmax()))
        events.append(("attn.max_logit", worst))
        self.history.append((obs.step, worst))
        if not self._persist(worst > self.t.max_logit):
            return events, None
        first = self.history[0][1]
        return events, Alarm(
            "attention logit growth", "error",
            f"Attention logits grew to {worst:.1f} in layer {where[0]} head {where[1]} "
            f"(from {first:.2f} at step {self.history[0][0]}; limit {self.t.max_logit:g}).",
            cause="q and k norms grow without bound at this learning rate, driving attention one-hot",
            mitigation="QK-LayerNorm (Dehghani et al. 2023), σReparam, or a lower learning rate",
            evidence={"layer": where[0], "head": where[1], "max_logit": worst, "initial": first,
                      "trend_per_100_steps": self.trend(), "threshold": self.t.max_logit},
        )


@register
class AttentionSink(Check):
    """Attention sinks: many heads park their mass on the first token (Xiao et al. 2023; Gu et al. 2024)."""

    name = "attention_sink"

    def observe(self, obs: Observation):
        ins = obs.internals
        events, heads, sinks, top = [], 0, 0, (0.0, None)
        for i, p in ins.pattern.items():
            alpha = sink_mass(p, visible=_visible(p, ins.causal))[:, :, 0].mean(0)  # [H] mass on key 0
            events.append((f"attn.sink_mass.L{i}", float(alpha.mean())))
            heads += alpha.numel()
            sinks += int((alpha > self.t.sink_alpha).sum())
            if float(alpha.max()) > top[0]:
                top = (float(alpha.max()), (i, int(alpha.argmax())))
        share = sinks / max(heads, 1)
        events.append(("attn.sink_share", share))
        self.history.append((obs.step, share))
        if not self._persist(share > self.t.sink_share):
            return events, None
        return events, Alarm(
            "attention sink", "warning",
            f"Attention sink on the first token: {sinks}/{heads} monitored heads put > {self.t.sink_alpha:g} of their "
            f"mass on it (strongest: layer {top[1][0]} head {top[1][1]}, {top[0]:.2f}).",
            cause="heads with nothing to attend to dump softmax mass on the first token, which then cannot "
                  "be evicted from a KV cache without breaking the model (StreamingLLM)",
            mitigation="a learnable per-head sink logit (softmax off-by-one), a dedicated sink token, "
                       "or keep the first tokens' KV when windowing",
            evidence={"share": share, "sink_heads": sinks, "heads": heads, "max_mass": top[0],
                      "layer": top[1][0], "head": top[1][1], "threshold": self.t.sink_share},
        )
