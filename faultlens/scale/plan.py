"""Work units of a scan: (model, probe, shard of cases), and how a scan is cut into them.

A unit is the smallest thing an executor schedules or retries. Units are pure data (picklable,
no model, no store handle) so they travel to Ray workers unchanged, and they are cut the same
way for every executor, so a local and a Ray scan batch the very same cases together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faultlens.types import Case


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads one model.

    Attributes:
        name: shipped model name or local HF directory, exactly as the user gave it (every
            worker node resolves it itself, so the path must exist on each node).
        attn: attention implementation ("sdpa" or "eager").
        trust_remote_code: allow the model's own Python code.
    """

    name: str
    attn: str = "sdpa"
    trust_remote_code: bool = False


@dataclass(frozen=True)
class Unit:
    """One schedulable, idempotent piece of a scan.

    Attributes:
        model: index into the scan's list of `ModelSpec`s.
        run_id: the run of that model the results belong to.
        probe: probe name.
        shard: shard index within (run, probe), for display and ordering.
        cases: the cases to score (those not already stored when the scan was planned).
        features: capture per-case features too.
        chunk: cases per committed transaction inside the unit.
    """

    model: int
    run_id: str
    probe: str
    shard: int
    cases: tuple[Case, ...]
    features: bool = True
    chunk: int = 48

    @property
    def key(self) -> str:
        return f"{self.run_id}/{self.probe}/{self.shard}"


@dataclass(frozen=True)
class UnitResult:
    """What a worker reports back when a unit is stored.

    Attributes:
        key: `Unit.key` of the unit.
        n_cases: cases scored (and written; rows already stored were skipped by the store).
        seconds: wall time inside the worker, model forward + store writes.
        worker: pid of the worker process that ran it (shows Ray spreading and retries).
    """

    key: str
    n_cases: int
    seconds: float
    worker: int


def shards(cases: Sequence[Case], size: int) -> list[tuple[Case, ...]]:
    """Consecutive shards of at most `size` cases, in the given order."""
    if size < 1:
        raise ValueError("shard size must be >= 1")
    return [tuple(cases[i:i + size]) for i in range(0, len(cases), size)]


def plan_units(run_ids: Sequence[str], plan: Mapping[str, Sequence[Case]], done: Mapping[tuple[str, str], set[str]],
               shard_size: int, features: bool = True, chunk: int = 48) -> list[Unit]:
    """Cut a scan of several models into units, skipping cases already stored.

    Args:
        run_ids: one run id per model, in model order (unit.model indexes this list).
        plan: probe name -> its cases (the same cases for every model).
        done: (run_id, probe) -> case ids already stored (a resumed scan skips them).
        shard_size: cases per unit.
        features: capture per-case features.
        chunk: cases per transaction inside a unit.

    Returns:
        Units ordered model-major, then probe, then shard: every missing case is in exactly one unit.
    """
    units = []
    for m, run_id in enumerate(run_ids):
        for probe, cases in plan.items():
            stored = done.get((run_id, probe), set())
            todo = [c for c in cases if c.id not in stored]
            for s, part in enumerate(shards(todo, shard_size)):
                units.append(Unit(m, run_id, probe, s, part, features, chunk))
    return units
