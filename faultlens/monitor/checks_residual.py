"""Residual-stream and position checks: rank collapse (training steps), lazy attention layers,
order blindness and length extrapolation (evaluation passes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faultlens.diagnostics.metrics import lazy_cosine, token_uniformity
from faultlens.monitor.check import Alarm, Check, Observation, register
from faultlens.monitor.taps import read_internals


@register
class RankCollapse(Check):
    """Rank collapse: all tokens' residual vectors become the same with depth (Dong et al. 2021)."""

    name = "rank_collapse"

    def observe(self, obs: Observation):
        ins = obs.internals
        # Centre across the whole probe batch first: trained LMs share one large common direction
        # (anisotropy, Ethayarajh 2019) that makes healthy streams look rank-one; collapse means
        # tokens *within* a sequence become alike, which this ratio still measures.
        vals = {i: float(token_uniformity(x - x.float().mean((0, 1), keepdim=True)).mean())
                for i, x in ins.resid_post.items() if x is not None}
        if not vals:
            return [], None
        events = [(f"resid.token_uniformity.L{i}", v) for i, v in vals.items()]
        last = max(vals)
        self.history.append((obs.step, vals[last]))
        if not self._persist(vals[last] < self.t.rank_uniformity):
            return events, None
        first_bad = min(i for i, v in vals.items() if v < self.t.rank_uniformity)
        return events, Alarm(
            "rank collapse", "error",
            f"Rank collapse: token uniformity {vals[last]:.3g} at layer {last} (first below "
            f"{self.t.rank_uniformity:g} at layer {first_bad}); every token carries nearly the same vector.",
            cause="stacked attention averages tokens together (doubly exponentially without skips); "
                  "with all tokens alike the q/k gradients vanish (Noci et al. 2022)",
            mitigation="skip connections with Pre-LN, smaller residual-branch init, or residual scaling ~1/√L",
            evidence={"uniformity": {str(k): v for k, v in vals.items()}, "first_layer": first_bad,
                      "threshold": self.t.rank_uniformity},
        )


@register
class LazyLayers(Check):
    """Lazy attention layers at evaluation: cos(X, X + Attn(X)) ≈ 1 (He et al. 2024)."""

    name = "lazy_layers"
    phase = "eval"

    def observe(self, obs: Observation):
        ins = obs.internals
        cos = {}
        for i, x in ins.resid_pre.items():
            if x is not None and ins.attn_out.get(i) is not None:
                cos[i] = float(lazy_cosine(x, x + ins.attn_out[i]).mean())
        events = [(f"lazy.cos.L{i}", v) for i, v in cos.items()]
        lazy = sorted(i for i, v in cos.items() if v >= self.t.lazy_cos)
        if not lazy:
            return events, None
        return events, Alarm(
            "lazy layer", "info",
            f"Lazy attention layer(s) {lazy}: the attention output barely changes the residual stream "
            f"(cos ≥ {self.t.lazy_cos:g}: " + ", ".join(f"L{i} {cos[i]:.3f}" for i in lazy) + ").",
            cause="the layer learned (or kept) a near-no-op attention; it adds cost but little function",
            mitigation="drop or prune these attention layers (Attention Drop), or grow a shallower model",
            evidence={"cos": {str(k): v for k, v in cos.items()}, "lazy": lazy, "threshold": self.t.lazy_cos},
        )


@register
class OrderBlindness(Check):
    """Order blindness at evaluation: f(Px) = P f(x), the model ignores token order."""

    name = "order_blindness"
    phase = "eval"

    def observe(self, obs: Observation):
        x = obs.probe
        gen = torch.Generator().manual_seed(0)
        perm = torch.randperm(x.shape[1], generator=gen)  # [T]
        with torch.no_grad():
            base = read_internals(obs.model, x, []).logits.float()  # [B, T, V]
            permuted = read_internals(obs.model, x[:, perm], []).logits.float()
        err = float((permuted - base[:, perm]).norm() / base.norm().clamp_min(1e-12))
        events = [("pos.equivariance_error", err)]
        if err >= self.t.order_error:
            return events, None
        return events, Alarm(
            "order blindness", "error",
            f"Order blindness: permuting the input permutes the output exactly (equivariance error {err:.2e}); "
            "the model cannot use word order.",
            cause="bidirectional attention without positional encoding is permutation-equivariant",
            mitigation="add a positional encoding (RoPE, ALiBi, sinusoidal with √d-scaled embeddings, learned) "
                       "or use a causal mask",
            evidence={"equivariance_error": err, "threshold": self.t.order_error},
        )


@register
class LengthExtrapolation(Check):
    """Length extrapolation at evaluation: loss past the training length is much worse than within it."""

    name = "length_extrapolation"
    phase = "eval"

    def observe(self, obs: Observation):
        x, L = obs.eval_batch, obs.train_length
        if x is None or not L or x.shape[1] <= L + 1:
            return [], None
        logits = read_internals(obs.model, x, []).logits.float()  # [B, T', V]
        ce = F.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="none").view(x.shape[0], -1)
        within, beyond = float(ce[:, : L - 1].mean()), float(ce[:, L - 1:].mean())
        gap = beyond - within
        events = [("pos.ce_within", within), ("pos.ce_beyond", beyond), ("pos.extrapolation_gap", gap)]
        if gap <= self.t.extrapolation_gap:
            return events, None
        return events, Alarm(
            "length extrapolation failure", "warning",
            f"Past the training length ({L}) the loss rises from {within:.2f} to {beyond:.2f} nats (+{gap:.2f}).",
            cause="absolute positional encodings (sinusoidal / learned) were never trained at these positions",
            mitigation="ALiBi or RoPE (with interpolation), or train on longer sequences",
            evidence={"ce_within": within, "ce_beyond": beyond, "gap": gap, "train_length": L,
                      "eval_length": int(x.shape[1]), "threshold": self.t.extrapolation_gap},
        )
