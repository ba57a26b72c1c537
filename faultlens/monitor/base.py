"""The `Monitor` callback base: four no-op hooks and a state dict (DESIGN.md).

A training loop (ours, a Hugging Face `Trainer` through `hf.py`, or Lightning through
`lightning.py`) calls the hooks; a monitor overrides the ones it needs. Nothing here knows
about particular checks; `health.py` is the monitor that runs them.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class Monitor:
    """Base class: override any of the four hooks.

    Hook contract (every integration honours it):
        * `on_train_start(model)` once, before the first step.
        * `on_step(step, model, loss, optimizer, batch)` once per optimizer step, **after
          backward and before `optimizer.step()`**, so `p.grad` holds this step's gradients and
          the parameters are the ones that produced `loss`. `step` counts from 0. `batch` is the
          step's input ids ``[B, T]`` when the loop knows them (used to fix a probe batch).
        * `on_eval(step, model, metrics)` after an evaluation pass; `metrics` maps names to
          floats (e.g. {"val_loss": 2.3}).
        * `on_train_end(model)` once.
    """

    def on_train_start(self, model: nn.Module) -> None:
        """Called once before the first step."""

    def on_step(self, step: int, model: nn.Module, loss: Tensor | float | None,
                optimizer: Any = None, batch: Tensor | None = None) -> None:
        """Called after backward, before the optimizer step."""

    def on_eval(self, step: int, model: nn.Module, metrics: dict[str, float] | None = None) -> None:
        """Called after an evaluation pass."""

    def on_train_end(self, model: nn.Module) -> None:
        """Called once after the last step."""

    def state_dict(self) -> dict:
        """JSON-able state, so a resumed run keeps its history."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""
