"""Overhead of the training-health monitor at its default sampling (not a test).

Trains the same organism (4-layer d128 char LM, B 32 × T 64) with and without `HealthMonitor()`
in one process, alternating the order, and prints monitor/plain ratios of the medians. Target
≤ 5 %. Three views of the same runs:

* wall time (what the issue asks; noisy on a shared machine),
* process CPU time (single-threaded, so it equals the idle-machine wall time and is far less
  sensitive to other processes' load),
* time spent inside the monitor's hooks (timed directly), as a share of the monitored run.

Usage: ``python benchmarks/bench_monitor.py [--repeats 3] [--steps 150]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from faultlens.monitor.base import Monitor
from faultlens.monitor.health import HealthMonitor
from faultlens.organisms.data import tasks
from faultlens.organisms.model import OrganismConfig
from faultlens.organisms.train import TrainConfig, train


class TimedMonitor(Monitor):
    """Forwards every hook to `inner` and adds up the wall and CPU seconds spent in them."""

    def __init__(self, inner: Monitor) -> None:
        self.inner, self.wall, self.cpu = inner, 0.0, 0.0

    def _timed(self, fn, *args) -> None:
        w, c = time.perf_counter(), time.process_time()
        fn(*args)
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c

    def on_train_start(self, model):
        self._timed(self.inner.on_train_start, model)

    def on_step(self, step, model, loss, optimizer=None, batch=None):
        self._timed(self.inner.on_step, step, model, loss, optimizer, batch)

    def on_eval(self, step, model, metrics=None):
        self._timed(self.inner.on_eval, step, model, metrics)

    def on_train_end(self, model):
        self._timed(self.inner.on_train_end, model)


def main(repeats: int = 3, steps: int = 150) -> None:
    torch.set_num_threads(1)
    task = tasks.get("stdlib_chars")()
    mcfg = OrganismConfig(d_model=128, n_head=4, n_layer=4)
    tcfg = TrainConfig(steps=steps, batch_size=32, seq_len=64, lr=1e-3)
    train(mcfg, TrainConfig(steps=5), task)  # warm-up
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    inside: list[tuple[float, float]] = []
    for r in range(repeats):
        for with_monitor in ((False, True) if r % 2 == 0 else (True, False)):
            mon = TimedMonitor(HealthMonitor())
            w, c = time.perf_counter(), time.process_time()
            train(mcfg, tcfg, task, [mon] if with_monitor else [])
            runs[with_monitor].append((time.perf_counter() - w, time.process_time() - c))
            if with_monitor:
                inside.append((mon.wall / runs[True][-1][0], mon.cpu / runs[True][-1][1]))
    for i, what in enumerate(("wall", "cpu")):
        p = statistics.median(x[i] for x in runs[False])
        m = statistics.median(x[i] for x in runs[True])
        print(f"{what:4s} plain {p:7.2f}s  monitor {m:7.2f}s  ratio monitor/plain = {m / p:.3f} "
              f"(overhead {100 * (m / p - 1):+.1f} %, target <= +5 %)  runs plain {[round(x[i], 1) for x in runs[False]]} "
              f"monitor {[round(x[i], 1) for x in runs[True]]}")
    print(f"time inside monitor hooks: wall {100 * statistics.median(x[0] for x in inside):.2f} %, "
          f"cpu {100 * statistics.median(x[1] for x in inside):.2f} % of the monitored run "
          f"({steps} steps, every={HealthMonitor().config.every})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    a = ap.parse_args()
    main(a.repeats, a.steps)
