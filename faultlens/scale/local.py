"""The local executor: every unit in this process, one after another (the default)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from faultlens.scale.executor import Executor, OnDone, executors
from faultlens.scale.plan import ModelSpec, Unit
from faultlens.scale.worker import UnitWorker
from faultlens.types import Case


@executors.register("local")
class LocalExecutor(Executor):
    """Runs units in-process through one `UnitWorker` (each model loaded once).

    Works with any store, SQLite included. Torch keeps its default thread count.
    """

    name = "local"

    def start(self, models: Sequence[ModelSpec], store) -> None:
        self.worker = UnitWorker(models, store)
        self.worker.warm()

    def inspect(self, plan: Mapping[str, Sequence[Case]]) -> list[dict]:
        return [self.worker.inspect(m, plan) for m in range(len(self.worker.models))]

    def run(self, units: Sequence[Unit], on_done: OnDone) -> None:
        for u in units:
            on_done(u, self.worker.run(u))
