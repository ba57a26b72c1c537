"""The narrow waist every model plugs into (DESIGN.md: three methods)."""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class ModelAdapter(Protocol):
    """What probes, runners and tools need from a model.

    `score` is the workhorse: the summed natural-log probability of each continuation given its
    prompt. Prefer it over generation whenever a case has a target and a foil.
    """

    name: str

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Summed log-prob of `continuations[i]` after `prompts[i]` (same length lists)."""
        ...

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, **sampling: Any) -> list[str]:
        """Continuation text for each prompt (greedy unless sampling args say otherwise)."""
        ...


@runtime_checkable
class WhiteBoxAdapter(ModelAdapter, Protocol):
    """An adapter that can also expose internals through named hook points."""

    def capture(
        self, points: Sequence[str], fn: Callable[[str, torch.Tensor], Any] | None = None
    ) -> ContextManager[dict[str, Any]]:
        ...
