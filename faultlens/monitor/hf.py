"""Hugging Face `Trainer` integration: a `TrainerCallback` that drives a `Monitor`.

The Trainer does not hand callbacks the loss or the batch, so a forward hook on the model
keeps the last *training* forward's loss and input ids; `on_pre_optimizer_step` (gradients
present, parameters not yet updated) then calls `monitor.on_step`.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from faultlens.monitor.base import Monitor


class FaultlensTrainerCallback(TrainerCallback):
    """Pass to `Trainer(callbacks=[FaultlensTrainerCallback(HealthMonitor(...))])`."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self._loss = None
        self._ids = None
        self._handle = None

    def _hook(self, module, args, kwargs, output) -> None:
        if not module.training:  # the monitor's own eval-mode probe forwards
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self._ids = ids.detach()
        loss = getattr(output, "loss", None)
        if loss is not None:
            self._loss = loss.detach()

    def on_train_begin(self, args, state, control, model=None, **kw: Any):
        self._handle = model.register_forward_hook(self._hook, with_kwargs=True)
        self.monitor.on_train_start(model)

    def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kw: Any):
        self.monitor.on_step(state.global_step, model, self._loss, optimizer, self._ids)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kw: Any):
        vals = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        self.monitor.on_eval(state.global_step, model, vals)

    def on_train_end(self, args, state, control, model=None, **kw: Any):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.monitor.on_train_end(model)
