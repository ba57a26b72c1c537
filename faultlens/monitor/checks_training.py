"""Optimisation-health checks: non-finite values, loss divergence/oscillation, gradient norms
across depth, and output log-partition drift.

The loss and non-finite checks read one float per step; the gradient and log-partition checks
run on sampled steps only.
"""

from __future__ import annotations

import math
import statistics

import torch
from torch import nn

from faultlens.monitor.check import Alarm, Check, Observation, register


def first_nonfinite_activation(model: nn.Module, x: torch.Tensor) -> str | None:
    """Name of the first module (in execution order) whose output has a NaN/Inf on `x`."""
    found: list[str] = []

    def hook(name):
        def fn(_m, _i, out):
            t = out[0] if isinstance(out, (tuple, list)) else getattr(out, "logits", out)
            if not found and isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
                found.append(name)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x) if not hasattr(model, "config") else model(input_ids=x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return found[0] if found else None


@register
class NonFinite(Check):
    """NaN/Inf in the loss, gradients or parameters, located at the first layer where it appears."""

    name = "nonfinite"
    sampled = False

    def __init__(self, thresholds) -> None:
        super().__init__(thresholds)
        self.fired = False

    def observe(self, obs: Observation):
        loss_bad = obs.loss is not None and not math.isfinite(obs.loss)
        if self.fired or not (loss_bad or obs.sampled):
            return [], None
        params = [n for n, p in obs.model.named_parameters() if not torch.isfinite(p).all()]
        grads = [n for n, p in obs.model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        if not (loss_bad or params or grads):
            return [], None
        self.fired = True
        act = first_nonfinite_activation(obs.model, obs.probe) if obs.probe is not None else None
        where = act or (params[0] if params else grads[0] if grads else "loss")
        return [("nonfinite", 1.0)], Alarm(
            "numerical instability", "error",
            f"Non-finite values at step {obs.step}: loss={obs.loss}, first in {where} "
            f"({len(params)} parameter tensors and {len(grads)} gradients non-finite).",
            cause="an activation or update overflowed its dtype (fp16 max 65504) or the learning rate "
                  "made the weights explode",
            mitigation="gradient clipping, bf16 (or fp32 master weights with loss scaling) instead of fp16, "
                       "or a lower learning rate / warmup",
            evidence={"loss": str(obs.loss), "first_activation": act, "first_param": params[:1],
                      "first_grad": grads[:1], "n_params_bad": len(params), "n_grads_bad": len(grads)},
        )


@register
class LossTrend(Check):
    """Loss divergence (EMA climbs far above its best) or oscillation (repeated spikes)."""

    name = "loss_trend"
    sampled = False

    def __init__(self, thresholds) -> None:
        super().__init__(thresholds)
        self.losses: list[float] = []
        self.ema: float | None = None
        self.best = float("inf")
        self.spikes: list[int] = []
        self.fired: set[str] = set()

    def observe(self, obs: Observation):
        if obs.loss is None or not math.isfinite(obs.loss):
            return [], None
        loss = obs.loss
        recent = self.losses[-self.t.window:]
        if len(recent) >= 10 and loss > statistics.median(recent) * (1 + self.t.spike_frac):
            self.spikes.append(obs.step)
        self.losses.append(loss)
        self.ema = loss if self.ema is None else 0.9 * self.ema + 0.1 * loss
        if len(self.losses) >= 10:
            self.best = min(self.best, self.ema)
        events = [("loss.ema", self.ema)]
        rise = self.ema - self.best
        if "div" not in self.fired and len(self.losses) >= 20 and rise > self.t.divergence:
            self.fired.add("div")
            return events, Alarm(
                "loss divergence", "error",
                f"Loss is diverging: its moving average rose {rise:.2f} nats above its best ({self.best:.3f}).",
                cause="the optimiser overshoots (learning rate too high for the current curvature) or the "
                      "model is blowing up numerically",
                mitigation="lower the learning rate, add warmup and gradient clipping; check the attention-logit "
                           "and gradient-norm findings for the root cause",
                evidence={"ema": self.ema, "best_ema": self.best, "rise": rise, "threshold": self.t.divergence},
            )
        live = [s for s in self.spikes if s > obs.step - self.t.window]
        if "osc" not in self.fired and len(live) >= self.t.oscillation_spikes:
            self.fired.add("osc")
            return events, Alarm(
                "loss oscillation", "warning",
                f"Loss oscillates: {len(live)} spikes > {self.t.spike_frac:.0%} above the running median "
                f"in the last {self.t.window} steps (at {live[:5]}).",
                cause="updates too large for the loss surface (learning rate, no clipping) or unstable attention",
                mitigation="lower the learning rate or add gradient clipping and warmup",
                evidence={"spike_steps": live, "window": self.t.window},
            )
        return events, None

    def state_dict(self) -> dict:
        return super().state_dict() | {"losses": self.losses[-self.t.window:], "ema": self.ema, "best": self.best,
                                       "spikes": self.spikes, "fired": sorted(self.fired)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.losses, self.ema, self.best = list(state["losses"]), state["ema"], state["best"]
        self.spikes, self.fired = list(state["spikes"]), set(state["fired"])


@register
class GradientNorms(Check):
    """Vanishing or exploding gradients: per-block gradient norms across depth and over time."""

    name = "gradient_norms"

    def __init__(self, thresholds) -> None:
        super().__init__(thresholds)
        self.totals: list[float] = []

    def observe(self, obs: Observation):
        norms = obs.block_grad_norms
        total = obs.total_grad_norm
        if not norms or total is None or not math.isfinite(total):
            return [], None
        events = [(f"grad.norm.L{i}", v) for i, v in norms.items()] + [("grad.norm.total", total)]
        lo_i = min(norms, key=norms.get)
        hi_i = max(norms, key=norms.get)
        ratio = norms[hi_i] / max(norms[lo_i], 1e-30)
        events.append(("grad.depth_ratio", ratio))
        self.history.append((obs.step, ratio))
        med = statistics.median(self.totals) if self.totals else None
        self.totals.append(total)
        if med and total > self.t.grad_explode * med:
            return events, Alarm(
                "exploding gradient", "error",
                f"Gradient norm exploded to {total:.3g} ({total / med:.0f}× its median {med:.3g}).",
                cause="an instability (learning rate, attention-logit growth, bad init) amplifies updates",
                mitigation="gradient clipping, a lower learning rate, warmup",
                evidence={"total": total, "median": med, "threshold": self.t.grad_explode},
            )
        vanishing = lo_i < hi_i  # the input side receives the smallest gradient
        if not self._persist(ratio > self.t.grad_ratio and vanishing):
            return events, None
        return events, Alarm(
            "vanishing gradient", "error",
            f"Gradients vanish with depth: block {lo_i} gets {norms[lo_i]:.2e} vs {norms[hi_i]:.2e} at block {hi_i} "
            f"(ratio {ratio:.0f}).",
            cause="the signal is attenuated through the stack (Post-LN normalises away the residual path; "
                  "tokens collapse towards rank one), so early layers stop learning",
            mitigation="Pre-LN blocks (Xiong et al. 2020), smaller residual-branch init or residual scaling (DeepNorm), "
                       "warmup",
            evidence={"norms": {str(k): v for k, v in norms.items()}, "ratio": ratio, "lowest_block": lo_i,
                      "highest_block": hi_i, "threshold": self.t.grad_ratio},
        )


@register
class LogPartition(Check):
    """Output-logit divergence: the mean log-partition log Z of the LM head drifts (Wortsman et al. 2023)."""

    name = "log_partition"

    def observe(self, obs: Observation):
        logits = obs.internals.logits.float()  # [B, T, V]
        log_z = float(torch.logsumexp(logits, -1).mean())
        mean_logit = float(logits.mean())
        events = [("out.log_z", log_z), ("out.mean_logit", mean_logit)]
        self.history.append((obs.step, log_z))
        # Growth of |log Z| beyond its initial magnitude: z-loss pulling log Z towards 0 is the
        # cure, not a symptom, so only moving away from 0 counts.
        drift = abs(log_z) - abs(self.history[0][1])
        if not self._persist(drift > self.t.log_z_drift):
            return events, None
        return events, Alarm(
            "output logit divergence", "warning",
            f"Output log-partition drifted away from 0 by {drift:+.2f} nats (log Z {self.history[0][1]:.2f} → {log_z:.2f}; "
            f"mean logit {mean_logit:.2f}).",
            cause="softmax is shift-invariant, so nothing pins the output logits' scale; they drift "
                  "with the learning rate until the loss becomes unstable",
            mitigation="z-loss 1e-4·log²Z (PaLM), weight decay on the LM head, or a lower learning rate",
            evidence={"log_z": log_z, "initial": self.history[0][1], "drift": drift, "mean_logit": mean_logit,
                      "trend_per_100_steps": self.trend(), "threshold": self.t.log_z_drift},
        )
