"""Scale-out: the same multi-model probe scan with the local executor and with Ray on 2 workers.

Both write to one local PostgreSQL server (started here, on 127.0.0.1) so only the executor
differs; Ray runs in this process's own private instance (`ray.init(num_cpus=2)`). Prints:

* wall time of the unit phase for each executor and the speedup (target >= 1.6x on 2 cores),
* end-to-end time including Ray start-up and model loading on the workers,
* the per-unit overhead Ray adds: driver round trip minus time spent inside the worker,
* that both runs stored the same rows (max |score difference|).

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
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=2, help="copies of stories260k scanned side by side")
    ap.add_argument("--probes", default="all")
    ap.add_argument("--n-per-cell", type=int, default=8)
    ap.add_argument("--shard-size", type=int, default=48)
    ap.add_argument("--chunk", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
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

    with postgres_server() as url:
        t0 = time.perf_counter()
        local = scan_models(specs, url, cfg, ExecutorConfig("local", shard_size=args.shard_size), run_id="local")
        local_total = time.perf_counter() - t0

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.ERROR, log_to_driver=False)
        ray_init = time.perf_counter() - t0
        try:
            dist = scan_models(specs, url, cfg, ExecutorConfig("ray", workers=args.workers, shard_size=args.shard_size),
                               run_id="ray")
        finally:
            ray.shutdown()
        ray_total = time.perf_counter() - t0

        st = Store(url)
        a = st.to_pandas("results", local.run_ids).assign(m=lambda d: d["run_id"].str.split("-").str[-1])
        b = st.to_pandas("results", dist.run_ids).assign(m=lambda d: d["run_id"].str.split("-").str[-1])
        j = a.merge(b, on=["m", "probe", "case_id", "metric"], suffixes=("_l", "_r"))
        j["diff"] = (j["score_l"] - j["score_r"]).abs()
        if j["diff"].max() > 1e-4:  # same model, same units: only thread-count rounding may differ
            print("MISMATCH between executors; worst rows:")
            print(j.sort_values("diff").tail(5)[["m", "probe", "case_id", "metric", "score_l", "score_r"]].to_string())
        n_cases = sum(r.n_scored for r in local.reports)

    shutil.rmtree(tmp, ignore_errors=True)
    rt = [r for r, _ in dist.timings]
    inside = [w for _, w in dist.timings]
    over = [r - w for r, w in dist.timings]
    par_loss = (dist.seconds["units"] * args.workers - sum(inside)) / dist.n_units
    speed = local.seconds["units"] / dist.seconds["units"]
    print(f"scan: {args.models} models x {len(local.reports[0].analyses)} probes, {n_cases} cases, "
          f"{local.n_units} units of <= {args.shard_size} cases")
    print(f"rows equal: {len(j)} of {len(a)} matched, max |score diff| = {j['diff'].max():.2e}")
    print(f"local executor : units {local.seconds['units']:7.2f} s   end-to-end {local_total:7.2f} s "
          f"(model load + checks {local.seconds['setup']:.2f} s, analysis {local.seconds['analysis']:.2f} s)")
    print(f"ray, {args.workers} workers : units {dist.seconds['units']:7.2f} s   end-to-end {ray_total:7.2f} s "
          f"(ray.init {ray_init:.2f} s, actors + model load + checks {dist.seconds['setup']:.2f} s, "
          f"analysis {dist.seconds['analysis']:.2f} s)")
    print(f"speedup, unit phase (ray / local): {speed:.2f}x   (target >= 1.6x)")
    print(f"speedup, end-to-end incl. Ray start-up: {local_total / ray_total:.2f}x")
    print(f"per-unit overhead Ray adds (driver round trip - time inside the worker): mean {statistics.mean(over) * 1e3:.1f} ms, "
          f"median {statistics.median(over) * 1e3:.1f} ms, max {max(over) * 1e3:.1f} ms over {len(over)} units "
          f"(mean unit {statistics.mean(rt):.2f} s round trip, {statistics.mean(inside):.2f} s inside)")
    print(f"idle worker time per unit (workers x wall - busy time) / units: {par_loss * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
