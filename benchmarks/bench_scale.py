"""Scale-out: the same multi-model probe scan with the local executor and with Ray on 2 workers.

Both write to one local PostgreSQL server (started here, on 127.0.0.1) so only the executor
differs; Ray runs in this process's own private instance (`ray.init(num_cpus=2)`). Prints:

* wall time of the unit phase for each executor and the speedup (target >= 1.6x on 2 cores),
* end-to-end time including Ray start-up and model loading on the workers,
* the per-unit overhead Ray adds: driver round trip minus time spent inside the worker,
* that both runs stored the same rows (max |score difference|),
* the hardware ceiling: the same models scanned by two plain processes at once (one model each,
  local executor, 1 thread, no Ray), i.e. what two cores give this workload with no scheduler
  at all; the Ray speedup is also printed as a share of it.

    python benchmarks/bench_scale.py [--models 2] [--probes all] [--n-per-cell 8] [--shard-size 48] [--local-threads 1]

The local baseline uses 1 torch thread by default: on these tiny models that is its fastest
setting here (2 threads on 2 shared cores oversubscribe and run several times slower), so the
speedup printed is over the best local configuration, not a strawman.

On a shared machine the numbers move with the load; run it alone for a clean reading.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


_ONE_MODEL = """
import json, sys, torch
sys.path.insert(0, {root!r})
from faultlens.probes.base import ProbeConfig
from faultlens.probes.runner import ScanConfig
from faultlens.scale import ExecutorConfig, ModelSpec, scan_models
torch.set_num_threads(1)
cfg = ScanConfig(model="", probes={probes!r}, chunk={chunk}, probe=ProbeConfig(n_per_cell={n}))
r = scan_models([ModelSpec({model!r})], {url!r}, cfg, ExecutorConfig("local", shard_size={shard}), run_id={rid!r})
print(json.dumps(r.seconds))
"""


def ceiling(specs, url, args, r: int) -> float:
    """Unit-phase wall time of the models scanned by concurrent plain processes, one model each.

    Both processes start together and load their model before the unit phase; the ceiling is
    the longer of the two unit phases (the work is the same in each: copies of one model).
    """
    root = str(Path(__file__).resolve().parents[1])
    procs = [subprocess.Popen([sys.executable, "-c", _ONE_MODEL.format(
        root=root, probes=tuple(args.probes.split(",")), chunk=args.chunk, n=args.n_per_cell, model=s.name,
        url=url, shard=args.shard_size, rid=f"ceiling{r}-{i}")], stdout=subprocess.PIPE, text=True)
        for i, s in enumerate(specs)]
    secs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return max(s["units"] for s in secs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=2, help="copies of stories260k scanned side by side")
    ap.add_argument("--probes", default="all")
    ap.add_argument("--n-per-cell", type=int, default=8)
    ap.add_argument("--shard-size", type=int, default=48)
    ap.add_argument("--chunk", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2, help="Ray workers (the ceiling run needs --models == --workers)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of local, Ray and ceiling; medians printed")
    ap.add_argument("--local-threads", type=int, default=1,
                    help="torch threads for the local executor (1: its fastest here on tiny models; 0: torch's default)")
    args = ap.parse_args()

    import ray
    import torch

    from faultlens.models.zoo import resolve_model_path
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig
    from faultlens.scale import ExecutorConfig, ModelSpec, scan_models
    from faultlens.store import Store
    from tests.pgserver import postgres_server, unavailable_reason

    if unavailable_reason():
        sys.exit(f"needs a local PostgreSQL server: {unavailable_reason()}")
    # Several models = the shipped stories260k plus copies of its directory (one run each).
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    specs = [ModelSpec("stories260k")] + [
        ModelSpec(str(shutil.copytree(resolve_model_path("stories260k"), tmp / f"stories260k-copy{i}")))
        for i in range(1, args.models)]
    cfg = ScanConfig(model="", probes=tuple(args.probes.split(",")), chunk=args.chunk,
                     probe=ProbeConfig(n_per_cell=args.n_per_cell))
    if args.local_threads:
        torch.set_num_threads(args.local_threads)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; local torch threads "
          f"{torch.get_num_threads()}, Ray workers {args.workers} x 1 thread")

    rounds = []  # per round: (local, local end-to-end, ray, ray end-to-end, ray.init, ceiling)
    with postgres_server() as url:
        for r in range(args.repeats):  # local, Ray and the ceiling interleaved, so drifting load hits all three
            t0 = time.perf_counter()
            local = scan_models(specs, url, cfg, ExecutorConfig("local", shard_size=args.shard_size),
                                run_id=f"local{r}")
            local_total = time.perf_counter() - t0

            t0 = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level=logging.ERROR, log_to_driver=False)
            ray_init = time.perf_counter() - t0
            try:
                dist = scan_models(specs, url, cfg, ExecutorConfig("ray", workers=args.workers,
                                                                   shard_size=args.shard_size), run_id=f"ray{r}")
            finally:
                ray.shutdown()
            ray_total = time.perf_counter() - t0
            ceil = ceiling(specs, url, args, r) if args.models == args.workers else float("nan")
            rounds.append((local, local_total, dist, ray_total, ray_init, ceil))
            print(f"round {r + 1}: local {local.seconds['units']:.2f} s, ray {dist.seconds['units']:.2f} s "
                  f"({local.seconds['units'] / dist.seconds['units']:.2f}x), two plain processes {ceil:.2f} s "
                  f"({local.seconds['units'] / ceil:.2f}x); load {os.getloadavg()[0]:.1f}", flush=True)

            st = Store(url)
            a = st.to_pandas("results", local.run_ids).assign(m=lambda d: d["run_id"].str.split("-").str[-1])
            b = st.to_pandas("results", dist.run_ids).assign(m=lambda d: d["run_id"].str.split("-").str[-1])
            j = a.merge(b, on=["m", "probe", "case_id", "metric"], suffixes=("_l", "_r"))
            j["diff"] = (j["score_l"] - j["score_r"]).abs()
            if j["diff"].max() > 1e-4 or len(j) != len(a):  # same model, same units: only rounding may differ
                print("MISMATCH between executors; worst rows:")
                print(j.sort_values("diff").tail(5)[["m", "probe", "case_id", "metric", "score_l", "score_r"]].to_string())
        n_cases = sum(x.n_scored for x in local.reports)

    med = statistics.median
    speeds = [lo.seconds["units"] / d.seconds["units"] for lo, _, d, *_ in rounds]
    ceils = [lo.seconds["units"] / c for lo, *_, c in rounds]
    local_units, ray_units = med(lo.seconds["units"] for lo, *_ in rounds), med(d.seconds["units"] for _, _, d, *_ in rounds)
    local_total, ray_total = med(x[1] for x in rounds), med(x[3] for x in rounds)
    ray_init = med(x[4] for x in rounds)
    dist = rounds[-1][2]
    shutil.rmtree(tmp, ignore_errors=True)
    timings = [t for x in rounds for t in x[2].timings]
    rt = [r for r, _ in timings]
    inside = [w for _, w in timings]
    over = [r - w for r, w in timings]
    par_loss = med((x[2].seconds["units"] * args.workers - sum(w for _, w in x[2].timings)) / x[2].n_units
                   for x in rounds)
    print(f"scan: {args.models} models x {len(local.reports[0].analyses)} probes, {n_cases} cases, "
          f"{local.n_units} units of <= {args.shard_size} cases; {args.repeats} rounds, medians below")
    print(f"local executor : units {local_units:7.2f} s   end-to-end {local_total:7.2f} s "
          f"(model load + checks {local.seconds['setup']:.2f} s, analysis {local.seconds['analysis']:.2f} s)")
    print(f"ray, {args.workers} workers : units {ray_units:7.2f} s   end-to-end {ray_total:7.2f} s "
          f"(ray.init {ray_init:.2f} s, actors + model load + checks {dist.seconds['setup']:.2f} s, "
          f"analysis {dist.seconds['analysis']:.2f} s)")
    print(f"speedup, unit phase (ray / local): median {med(speeds):.2f}x, rounds "
          f"{', '.join(f'{x:.2f}' for x in speeds)}   (target >= 1.6x)")
    print(f"speedup, end-to-end incl. Ray start-up: {local_total / ray_total:.2f}x")
    if args.models == args.workers:
        print(f"hardware ceiling, {args.workers} plain processes (one model each, no Ray): median {med(ceils):.2f}x; "
              f"Ray reaches {med(speeds) / med(ceils):.0%} of it")
    print(f"per-unit overhead Ray adds (driver round trip - time inside the worker): mean {statistics.mean(over) * 1e3:.1f} ms, "
          f"median {med(over) * 1e3:.1f} ms, max {max(over) * 1e3:.1f} ms over {len(over)} units "
          f"(mean unit {statistics.mean(rt):.2f} s round trip, {statistics.mean(inside):.2f} s inside)")
    print(f"idle worker time per unit (workers x wall - busy time) / units: {par_loss * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
