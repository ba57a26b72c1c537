"""Fault injectors: `plant(model_or_module, "OP")` plants one ABNN mutation operator, reversibly.

Every injector is registered under its operator id (taxonomy.OPERATORS) in the ``fault`` registry
as ``fn(target, undo) -> None``: it edits the target (weights, instance hooks, kernel hooks) and
appends the callables that revert it to `undo`. `plant` returns a `Planted` handle
(``.remove()`` or use it as a context manager); removing restores the exact state dict and
leaves no hooks behind. Faults live on the *instance*, never on a class or a global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from faultlens.errors import FaultlensError
from faultlens.faults.kernel import add_kernel_hook
from faultlens.faults.target import Target, from_hf, from_module
from faultlens.faults.taxonomy import OPS, Operator
from faultlens.registry import Registry


@dataclass(frozen=True)
class Injector:
    op: Operator
    fn: Callable[[Target, list], None]
    applies: Callable[[Target], str | None]  # None = applies, else the reason it does not


faults: Registry[Injector] = Registry("fault")


def injector(op: str, applies: Callable[[Target], str | None] = lambda t: None):
    """Register ``fn(target, undo)`` as the injector of operator `op`."""

    def deco(fn):
        faults.add(op, Injector(OPS[op], fn, applies), OPS[op].mutation)
        return fn

    return deco


@dataclass
class Planted:
    """A planted fault; `remove()` reverts it (idempotent)."""

    op: str
    target: Target
    undo: list = field(default_factory=list)

    def remove(self) -> None:
        while self.undo:
            self.undo.pop()()

    def __enter__(self) -> "Planted":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def as_target(obj) -> Target:
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, nn.Module) and hasattr(obj, "config") and hasattr(obj, "base_model_prefix"):
        return from_hf(obj)
    if isinstance(obj, nn.Module):
        return from_module(obj)
    raise FaultlensError(f"cannot plant a fault in a {type(obj).__name__}; pass an nn.Module or HF model")


def applicable(obj, op: str) -> str | None:
    """None if `op` applies to the target, else why not."""
    import faultlens.faults.inject  # noqa: F401

    return faults.get(op).applies(as_target(obj))


def plant(obj, op: str) -> Planted:
    """Plant operator `op` into an HF model, attention module or `Target`; returns the undo handle."""
    import faultlens.faults.inject  # noqa: F401  (registers the injectors)

    inj = faults.get(op)
    target = as_target(obj)
    why = inj.applies(target)
    if why:
        raise FaultlensError(f"fault {op} does not apply to {target.name}: {why}")
    planted = Planted(op, target)
    try:
        inj.fn(target, planted.undo)
    except Exception:
        planted.remove()
        raise
    return planted


# ---------------------------------------------------------------------- shared plumbing
def on_kernel(target: Target, stage: str, fn: Callable, undo: list, layers: list[int] | None = None) -> None:
    """Attach a kernel hook to the attention modules (all, or the given layer indices)."""
    for i, attn in enumerate(target.attn):
        if layers is None or i in layers:
            undo.append(add_kernel_hook(attn, stage, fn, layer=i).remove)


def needs(cond: bool, reason: str) -> str | None:
    return None if cond else reason
