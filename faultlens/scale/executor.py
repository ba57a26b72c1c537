"""The executor abstraction: who runs a scan's units, and where.

An executor loads the scan's models where the work happens, checks the cases fit them, runs
units (calling back once per finished unit), and says how it ran for the run's stored config.
Implementations register in `executors` ("local": in this process; "ray": Ray actors). The
orchestration around them (validation, runs, planning, analysis) is `faultlens.scale.scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from faultlens.registry import Registry
from faultlens.scale.plan import ModelSpec, Unit, UnitResult
from faultlens.types import Case

OnDone = Callable[[Unit, UnitResult], None]


@dataclass(frozen=True)
class ExecutorConfig:
    """How to execute a scan.

    Attributes:
        kind: registered executor name ("local" or "ray").
        ray_address: an existing Ray cluster ("HOST:PORT", "ray://HOST:PORT" or "auto");
            None starts a private Ray instance on this machine (or uses $RAY_ADDRESS).
        workers: Ray worker actors (None: one per CPU the cluster has).
        shard_size: cases per work unit.
    """

    kind: str = "local"
    ray_address: str | None = None
    workers: int | None = None
    shard_size: int = 96


class Executor:
    """Base class of executors; see the module docstring for the life cycle.

    Use as a context manager: `close()` releases workers even when a unit fails.
    """

    name: ClassVar[str] = ""

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.cfg = cfg

    def preflight(self, store_target: str) -> None:
        """Cheap checks that need no model and write nothing (store kind, cluster reachable)."""

    def start(self, models: Sequence[ModelSpec], store) -> None:
        """Connect and load the models where units will run (FaultlensError on bad models)."""
        raise NotImplementedError

    def inspect(self, plan: Mapping[str, Sequence[Case]]) -> list[dict]:
        """Per model, in order: check every case fits (FaultlensError if not); return its description."""
        raise NotImplementedError

    def run(self, units: Sequence[Unit], on_done: OnDone) -> None:
        """Run every unit; call `on_done` in this thread as each one is stored."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What gets recorded in each run's config under "executor"."""
        return {"kind": self.name, "shard_size": self.cfg.shard_size}

    def close(self) -> None:
        """Release workers and connections (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


executors: Registry[type[Executor]] = Registry("executor", "executors")


def is_sqlite(store_target: str) -> bool:
    """True for a bare file path (a SQLite file) or a sqlite:// URL."""
    t = str(store_target)
    return "://" not in t or t.split("://", 1)[0].split("+", 1)[0] == "sqlite"


def make_executor(cfg: ExecutorConfig) -> Executor:
    """Build the executor `cfg.kind` names (unknown names fail with a did-you-mean)."""
    import faultlens.scale.local
    import faultlens.scale.ray_executor  # noqa: F401  (registers "ray"; imports ray lazily)

    return executors.get(cfg.kind)(cfg)
