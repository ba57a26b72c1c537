"""Lightning integration: a `lightning.pytorch.Callback` that drives a `Monitor`.

`on_before_backward` gives the loss, `on_train_batch_start` the batch, and
`on_before_optimizer_step` (after backward, before the step) calls `monitor.on_step`.
The monitored network is `pl_module.<model_attr>` when it exists (default "model"), so a
LightningModule wrapping an `OrganismLM` or a transformers model is read through its tap.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from faultlens.monitor.base import Monitor


def _ids_of(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, dict):
        return batch.get("input_ids")
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    return None


class FaultlensLightningCallback(pl.Callback):
    """Pass to `Trainer(callbacks=[FaultlensLightningCallback(HealthMonitor(...))])`."""

    def __init__(self, monitor: Monitor, model_attr: str = "model") -> None:
        self.monitor, self.model_attr = monitor, model_attr
        self._loss = None
        self._ids = None

    def _net(self, pl_module: pl.LightningModule) -> torch.nn.Module:
        inner = getattr(pl_module, self.model_attr, None)
        return inner if isinstance(inner, torch.nn.Module) else pl_module

    def on_train_start(self, trainer, pl_module) -> None:
        self.monitor.on_train_start(self._net(pl_module))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._ids = _ids_of(batch)

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._loss = loss.detach()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.monitor.on_step(trainer.global_step, self._net(pl_module), self._loss, optimizer, self._ids)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
        self.monitor.on_eval(trainer.global_step, self._net(pl_module), metrics)

    def on_train_end(self, trainer, pl_module) -> None:
        self.monitor.on_train_end(self._net(pl_module))

    def state_dict(self) -> dict:
        return self.monitor.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.monitor.load_state_dict(state_dict)
