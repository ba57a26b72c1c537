"""`UnitWorker`: the process-local object that scores units; the same class runs in every executor.

It holds each model it has served (loaded once, on first use) and one store connection. The
local executor calls it directly; the Ray executor wraps it as an actor, so a Ray worker
loads each model once for its whole life, not once per unit. Writing goes through
`faultlens.probes.runner.score_unit`, whose per-chunk transactions with insert-or-ignore make
a retried unit harmless.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from faultlens.scale.plan import ModelSpec, Unit, UnitResult
from faultlens.types import Case


class UnitWorker:
    """Scores units of a scan into the store.

    Args:
        models: the scan's models; `Unit.model` indexes this list.
        store: a `Store`, or a store URL the worker opens itself (what Ray workers get).
        threads: torch intra-op threads for this process (None: leave torch's default). Ray
            workers use 1 so two workers on two cores do not fight over them.
    """

    def __init__(self, models: Sequence[ModelSpec], store, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from faultlens.probes import load_all
        from faultlens.probes.features import load_providers

        load_all()  # probes register themselves on import; a fresh Ray worker has none yet
        load_providers()
        self.models = list(models)
        self._store_arg = store
        self._store = None
        self._adapters: dict[int, object] = {}

    # ------------------------------------------------------------------ resources
    @property
    def store(self):
        if self._store is None:
            if isinstance(self._store_arg, str):
                from faultlens.store import Store

                self._store = Store(self._store_arg)
            else:
                self._store = self._store_arg
        return self._store

    def adapter(self, model: int):
        """The adapter of model `model`, loaded on first use and kept."""
        if model not in self._adapters:
            from faultlens.models.hf import HFAdapter

            spec = self.models[model]
            self._adapters[model] = HFAdapter.load(spec.name, attn_implementation=spec.attn,
                                                   trust_remote_code=spec.trust_remote_code)
        return self._adapters[model]

    # ------------------------------------------------------------------ calls
    def warm(self) -> int:
        """Load every model now (so unit timings hold no load time); return this process's pid."""
        for m in range(len(self.models)):
            self.adapter(m)
        return os.getpid()

    def inspect(self, model: int, plan: Mapping[str, Sequence[Case]]) -> dict:
        """Check every case fits the model's context (FaultlensError if not); describe the model.

        Returns:
            {"n_params": int, "adapter": class name, "white_box": bool}, recorded in the run's config.
        """
        from faultlens.probes.runner import check_lengths

        ad = self.adapter(model)
        check_lengths(ad, plan)
        return {"n_params": int(getattr(ad, "n_params", 0) or 0), "adapter": type(ad).__name__,
                "white_box": hasattr(ad, "capture")}

    def run(self, unit: Unit) -> UnitResult:
        """Score one unit into the store (idempotent: rows already stored are skipped)."""
        from faultlens.probes.runner import score_unit

        t0 = time.perf_counter()
        ad = self.adapter(unit.model)
        n = score_unit(ad, self.store, unit.run_id, unit.probe, list(unit.cases),
                       unit.features and hasattr(ad, "capture"), unit.chunk)
        return UnitResult(unit.key, n, time.perf_counter() - t0, os.getpid())

    def pid(self) -> int:
        return os.getpid()
