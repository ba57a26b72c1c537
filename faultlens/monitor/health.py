"""`HealthMonitor`: runs the registered checks from the four `Monitor` hooks, with sampling.

Cheap checks (loss, non-finite loss) run every step; probe-batch and gradient checks run every
`config.every` steps on a small fixed probe batch and a few evenly spaced layers. Scalars go to
the run store's monitor_events (and optionally TensorBoard); the first alarm of each
(check, category) becomes a `Finding` whose evidence names the step it fired, the cause and a
mitigation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

import faultlens.monitor.checks_attention  # noqa: F401  (registers checks)
import faultlens.monitor.checks_residual  # noqa: F401
import faultlens.monitor.checks_training  # noqa: F401
from faultlens.monitor.base import Monitor
from faultlens.monitor.check import Check, Observation, checks
from faultlens.monitor.config import MonitorConfig
from faultlens.monitor.taps import n_layers_of
from faultlens.types import Finding


def pick_layers(n: int, k: int) -> list[int]:
    """At most k evenly spaced layer indices of n, always including the first and the last."""
    if n <= k:
        return list(range(n))
    return sorted({round(j * (n - 1) / (k - 1)) for j in range(k)})


class HealthMonitor(Monitor):
    """The training-health monitor.

    Args:
        config: sampling, check selection and thresholds.
        store: a `faultlens.store.Store` to write events and findings to (optional).
        run_id: run to write under; created (kind "monitor") if a store is given without one.
        probe_batch: fixed ``[B, T]`` ids for the probe checks; default: the first training
            batch's first `probe_size` rows, truncated to `probe_len`.
        eval_batch: longer ``[B, T']`` ids for the length-extrapolation check.
        train_length: the sequence length the model is trained on.

    Attributes:
        findings: `Finding`s raised so far; `fired` maps "check/category" to its first step.
        events: every (step, name, value) recorded (also flushed to the store).
    """

    def __init__(self, config: MonitorConfig | None = None, store: Any = None, run_id: str | None = None,
                 probe_batch: Tensor | None = None, eval_batch: Tensor | None = None,
                 train_length: int | None = None) -> None:
        self.config = config or MonitorConfig()
        names = checks.resolve(list(self.config.checks))
        self.checks: dict[str, Check] = {n: checks.get(n)(self.config.thresholds) for n in names}
        self.store, self.run_id = store, run_id
        if store is not None and run_id is None:
            self.run_id = store.create_run("training", {"monitor": self.config.to_dict()}, kind="monitor")
        self.probe = probe_batch
        self.eval_batch, self.train_length = eval_batch, train_length
        self.findings: list[Finding] = []
        self.fired: dict[str, int] = {}
        self.events: list[tuple[int, str, float]] = []
        self._pending: list[tuple[int, str, float]] = []
        self._writer = None
        self.layers: list[int] = []

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, model: nn.Module) -> None:
        self.layers = pick_layers(n_layers_of(model), self.config.max_layers)
        if self.config.tensorboard_dir and self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.config.tensorboard_dir)

    def on_step(self, step: int, model: nn.Module, loss: Tensor | float | None,
                optimizer: Any = None, batch: Tensor | None = None) -> None:
        if not self.layers:
            self.on_train_start(model)
        if self.probe is None and batch is not None:
            self.probe = batch[: self.config.probe_size, : self.config.probe_len].detach().clone()
        if self.train_length is None and batch is not None:
            self.train_length = int(batch.shape[1])
        value = None if loss is None else float(loss.detach() if isinstance(loss, Tensor) else loss)
        sampled = step % self.config.every == 0 or (value is not None and not math.isfinite(value))
        obs = Observation(step, "step", model, value, self.probe, self.layers, sampled=sampled,
                          train_length=self.train_length)
        if value is not None:
            self._record(step, "loss", value)
        for name, check in self.checks.items():
            if check.phase == "step" and (sampled or not check.sampled):
                if check.sampled and self.probe is None and name not in ("gradient_norms",):
                    continue
                self._run(name, check, obs)
        if step % self.config.flush_every == 0:
            self.flush()

    def on_eval(self, step: int, model: nn.Module, metrics: dict[str, float] | None = None) -> None:
        if not self.layers:
            self.on_train_start(model)
        for k, v in (metrics or {}).items():
            self._record(step, f"eval.{k}", float(v))
        if self.probe is None:
            self.flush()
            return
        obs = Observation(step, "eval", model, None, self.probe, self.layers, metrics=dict(metrics or {}),
                          eval_batch=self.eval_batch, train_length=self.train_length)
        for name, check in self.checks.items():
            if check.phase == "eval":
                self._run(name, check, obs)
        self.flush()

    def on_train_end(self, model: nn.Module) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.flush()

    # ------------------------------------------------------------------ internals
    def _run(self, name: str, check: Check, obs: Observation) -> None:
        events, alarm = check.observe(obs)
        for ev_name, value in events:
            self._record(obs.step, ev_name, value)
        if alarm is None:
            return
        key = f"{name}/{alarm.category}"
        if key in self.fired:
            return
        self.fired[key] = obs.step
        evidence = {"step": obs.step, "check": name, "cause": alarm.cause, "mitigation": alarm.mitigation,
                    **alarm.evidence}
        finding = Finding(self.run_id or "", f"monitor:{name}", alarm.category, alarm.severity,
                          f"[step {obs.step}] {alarm.message} Likely cause: {alarm.cause}. Try: {alarm.mitigation}.",
                          evidence)
        self.findings.append(finding)
        if self.store is not None:
            self.store.add_findings([finding])

    def _record(self, step: int, name: str, value: float) -> None:
        self.events.append((step, name, value))
        self._pending.append((step, name, value))
        if self._writer is not None and math.isfinite(value):
            self._writer.add_scalar(f"faultlens/{name}", value, step)

    def flush(self) -> None:
        """Write buffered events to the store."""
        if self.store is not None and self._pending:
            self.store.add_events(self.run_id, self._pending)
        self._pending = []

    def categories(self) -> set[str]:
        """Categories raised so far."""
        return {f.category for f in self.findings}

    def first_step(self, category: str) -> int | None:
        """The step at which `category` first fired (None if never)."""
        steps = [f.evidence["step"] for f in self.findings if f.category == category]
        return min(steps) if steps else None

    def state_dict(self) -> dict:
        return {"fired": dict(self.fired), "checks": {n: c.state_dict() for n, c in self.checks.items()},
                "probe": None if self.probe is None else self.probe.tolist(), "layers": self.layers}

    def load_state_dict(self, state: dict) -> None:
        self.fired = dict(state.get("fired", {}))
        for n, s in state.get("checks", {}).items():
            if n in self.checks:
                self.checks[n].load_state_dict(s)
        if state.get("probe") is not None:
            self.probe = torch.tensor(state["probe"], dtype=torch.long)
        self.layers = list(state.get("layers", []))
