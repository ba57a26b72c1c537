"""The check interface: what a check sees (`Observation`), what it says (`Alarm`), and the
registry every check joins. Concrete checks live in `checks_*.py`; `health.py` runs them.

A check is a small stateful object: `observe(obs)` returns scalar events for the run store
and, when its condition holds, an `Alarm` naming a cause and a mitigation. The monitor turns
the first alarm of each (check, category) into a `Finding` with the step it fired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import torch
from torch import Tensor, nn

from faultlens.monitor.config import Thresholds
from faultlens.monitor.taps import Internals, read_internals
from faultlens.registry import Registry

checks: Registry[type[Check]] = Registry("monitor check", "monitor-checks")


@dataclass
class Alarm:
    """A check's verdict. `evidence` holds the numbers; cause/mitigation are one line each."""

    category: str
    severity: str
    message: str
    cause: str
    mitigation: str
    evidence: dict = field(default_factory=dict)


@dataclass
class Observation:
    """Everything a check may read at one step; the expensive parts are computed on first use.

    Attributes:
        phase: "step" (a training step) or "eval" (after an evaluation pass).
        sampled: True on steps where the sampled (probe / gradient) checks run.
        metrics: eval metrics from the loop (e.g. {"val_loss": 2.3}).
        eval_batch: optional longer batch ``[B, T']`` for eval checks (length extrapolation).
        train_length: the training sequence length, if known.
    """

    step: int
    phase: str
    model: nn.Module
    loss: float | None
    probe: Tensor | None
    layers: Sequence[int]
    sampled: bool = True
    metrics: dict = field(default_factory=dict)
    eval_batch: Tensor | None = None
    train_length: int | None = None

    @cached_property
    def internals(self) -> Internals | None:
        if self.probe is None:
            return None
        return read_internals(self.model, self.probe, self.layers)

    @cached_property
    def block_grad_norms(self) -> dict[int, float]:
        """L2 norm of the gradients of each decoder block's parameters (all blocks)."""
        out: dict[int, float] = {}
        for i, block in enumerate(_blocks(self.model)):
            sq = [p.grad.detach().float().pow(2).sum() for p in block.parameters() if p.grad is not None]
            if sq:
                out[i] = float(torch.stack(sq).sum().sqrt())
        return out

    @cached_property
    def total_grad_norm(self) -> float | None:
        sq = [p.grad.detach().float().pow(2).sum() for p in self.model.parameters() if p.grad is not None]
        return float(torch.stack(sq).sum().sqrt()) if sq else None


def _blocks(model: nn.Module) -> nn.ModuleList:
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList):
        return blocks
    from faultlens.capture import decoder_layers

    return decoder_layers(model)


class Check:
    """Base class. Subclasses set the class attributes and implement `observe`.

    Attributes:
        phase: "step" checks run during training, "eval" checks after evaluation passes.
        sampled: True if the check runs only on sampled steps (it reads the probe batch or
            gradients); False if it is cheap enough for every step.
    """

    name: ClassVar[str] = ""
    phase: ClassVar[str] = "step"
    sampled: ClassVar[bool] = True

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.history: list[tuple[int, float]] = []  # (step, headline value) for trends
        self._streak = 0

    def observe(self, obs: Observation) -> tuple[list[tuple[str, float]], Alarm | None]:
        raise NotImplementedError

    def _persist(self, violated: bool) -> bool:
        """True once `patience` consecutive sampled observations violated the threshold."""
        self._streak = self._streak + 1 if violated else 0
        return self._streak >= self.t.patience

    def trend(self, last: int = 4) -> float:
        """Least-squares slope per 100 steps of the headline value over the last samples."""
        pts = self.history[-last:]
        if len(pts) < 2:
            return 0.0
        s = torch.tensor([p[0] for p in pts], dtype=torch.float64)
        v = torch.tensor([p[1] for p in pts], dtype=torch.float64)
        s = s - s.mean()
        den = float((s * s).sum())
        return float((s * (v - v.mean())).sum()) / den * 100 if den else 0.0

    def state_dict(self) -> dict:
        return {"history": self.history, "streak": self._streak}

    def load_state_dict(self, state: dict) -> None:
        self.history = [tuple(h) for h in state.get("history", [])]
        self._streak = int(state.get("streak", 0))


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: add a check under its `name`."""
    return checks.register(cls.name, (cls.__doc__ or "").strip().splitlines()[0])(cls)


CheckFactory = Callable[[Thresholds], Check]
