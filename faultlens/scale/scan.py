"""Scan one or more models with any executor: validate everything, create runs, run units, analyse.

The order is the contract that keeps a failed start clean: every check that can fail on user
input (probe names, case files, model directories, the store kind, the Ray address, the store
connection, run-id clashes, models loading, prompts fitting the context) runs before the first
run row is created. Then each model gets its own run (so `faultlens compare` works on them), the
missing cases are cut into units, the executor runs them, and the driver analyses each probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from faultlens.errors import FaultlensError
from faultlens.probes.runner import ScanConfig, ScanReport, finish_probe, start_run
from faultlens.scale.executor import ExecutorConfig, make_executor
from faultlens.scale.plan import ModelSpec, Unit, UnitResult, plan_units

Progress = Callable[[str, int, int], None]  # (label, units done, units total)


@dataclass
class MultiScanReport:
    """Per-model reports (model order) plus how the scan ran.

    Attributes:
        reports: one `ScanReport` per model.
        executor: the executor description stored in each run's config.
        n_units: units run (cases not stored yet, cut into shards).
        seconds: wall time of "setup" (connect + load + checks), "units", "analysis".
        timings: executor-reported (round trip, in-worker) seconds per unit, when it reports them.
    """

    reports: list[ScanReport]
    executor: dict
    n_units: int
    seconds: dict = field(default_factory=dict)
    timings: list[tuple[float, float]] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.reports]


def run_ids_for(n_models: int, run_id: str | None) -> list[str | None]:
    """The run id of each model: `run_id` itself for one model, `run_id-1`, `run_id-2`, ... for several."""
    if run_id is None:
        return [None] * n_models
    return [run_id] if n_models == 1 else [f"{run_id}-{i + 1}" for i in range(n_models)]


def _check_runs(store, cfgs: Sequence[ScanConfig], run_ids: Sequence[str | None], resume: bool) -> None:
    """`start_run`'s checks for every model, without writing anything."""
    if resume and any(r is None for r in run_ids):
        raise FaultlensError("--resume needs --run-id ID of the run to continue.")
    for cfg, rid in zip(cfgs, run_ids):
        run = store.get_run(rid) if rid is not None else None
        if run is None:
            continue
        if not resume:
            raise FaultlensError(f"Run {rid!r} already exists; add --resume to continue it or pick another --run-id.")
        if run["config"].get("model") != cfg.model:
            raise FaultlensError(f"Run {rid!r} was started on model {run['config'].get('model')!r}, not {cfg.model!r}; "
                                 f"resume it with the same model(s) in the same order.")


def scan_models(models: Sequence[ModelSpec], store_target: str | None, cfg: ScanConfig, executor: ExecutorConfig,
                run_id: str | None = None, resume: bool = False, progress: Progress | None = None,
                on_status: Callable[[str], None] | None = None) -> MultiScanReport:
    """Run the probes of `cfg` on every model with the chosen executor; one run per model.

    Args:
        models: models to scan (cfg.model is replaced by each model's name).
        store_target: SQLite path or SQLAlchemy URL (None: the default store). Ray needs PostgreSQL.
        cfg: the scan (probes, cases, features, chunk); stored with each run plus the executor used.
        executor: which executor and how (shard size, Ray address, workers).
        run_id: name of the run (one model) or stem of the runs (`run_id-1`, ...; several models).
        resume: continue those runs, scoring only what is missing.
        progress: called as units finish, with ("units", done, total).
        on_status: called with a short line before each slow set-up step (for a spinner).

    Returns:
        A `MultiScanReport`; raises FaultlensError on bad input before any run is created.
    """
    from faultlens.models.loading import check_model_dir
    from faultlens.probes import load_all, probes
    from faultlens.store import open_store
    from faultlens.store.store import DEFAULT_STORE

    say = on_status or (lambda _msg: None)
    if not models:
        raise FaultlensError("Give at least one MODEL to scan.")
    t0 = time.perf_counter()
    load_all()
    names = probes.resolve(list(cfg.probes))
    ex = make_executor(executor)
    if cfg.attribute_failures and ex.name != "local":
        raise FaultlensError("Attributing failing cases needs the model in this process; use --executor local for it.")
    plan = {n: probes.get(n)().cases(cfg.probe) for n in names}
    for m in models:
        check_model_dir(m.name)
    ex.preflight(str(store_target or DEFAULT_STORE))
    try:
        store = open_store(store_target)
    except FaultlensError as exc:  # the driver's message can span lines (psycopg's does): keep it one line
        raise FaultlensError(" ".join(str(exc).split()), exc.exit_code) from None
    cfgs = [replace(cfg, model=m.name, probes=tuple(names)) for m in models]
    wanted = run_ids_for(len(models), run_id)
    _check_runs(store, cfgs, wanted, resume)
    with ex:
        say(f"starting the {ex.name} executor and loading {len(models)} model(s) …")
        ex.start(models, store)
        say("checking every case fits each model …")
        infos = ex.inspect(plan)
        run_ids = [start_run(store, c, r, resume) for c, r in zip(cfgs, wanted)]
        for rid, info in zip(run_ids, infos):
            store.update_config(rid, n_params=info["n_params"], adapter=info["adapter"], executor=ex.describe())
        done = {(r, n): store.done_case_ids(r, n) for r in run_ids for n in names}
        units = plan_units(run_ids, plan, done, executor.shard_size, cfg.features, cfg.chunk)
        t1 = time.perf_counter()
        scored = {r: 0 for r in run_ids}
        count = [0]
        if progress:
            progress("units", 0, len(units))

        def on_done(u: Unit, res: UnitResult) -> None:
            scored[u.run_id] += res.n_cases
            count[0] += 1
            if progress:
                progress("units", count[0], len(units))

        ex.run(units, on_done)
        described, timings = ex.describe(), list(getattr(ex, "timings", []))
        t2 = time.perf_counter()
        reports = []
        for m, rid in enumerate(run_ids):
            analyses = {n: finish_probe(store, rid, n, cfg.probe.alpha) for n in names}
            if cfg.attribute_failures:  # needs the model in this process: local executor only (checked above)
                from faultlens.probes.runner import attribute_failures_of

                for n in names:
                    attribute_failures_of(ex.worker.adapter(m), store, rid, n, cfg.attribute_failures)
            store.update_config(rid, executor=described)  # now with the restart count
            store.set_status(rid, "done")
            total = sum(len(c) for c in plan.values())
            reports.append(ScanReport(rid, analyses, scored[rid], total - scored[rid]))
    seconds = {"setup": t1 - t0, "units": t2 - t1, "analysis": time.perf_counter() - t2}
    return MultiScanReport(reports, described, len(units), seconds, timings)
