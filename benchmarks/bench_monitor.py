"""Wall-time overhead of the training-health monitor at its default sampling (not a test).

Trains the same organism (4-layer char LM, 150 steps) with and without `HealthMonitor()`
in one process, alternating the order, and prints monitor/plain time ratios. Target ≤ 5 %.
"""

from __future__ import annotations

import statistics
import time

import torch

from faultlens.monitor.health import HealthMonitor
from faultlens.organisms.data import tasks
from faultlens.organisms.model import OrganismConfig
from faultlens.organisms.train import TrainConfig, train


def main(repeats: int = 3) -> None:
    torch.set_num_threads(1)
    task = tasks.get("stdlib_chars")()
    mcfg = OrganismConfig(d_model=128, n_head=4, n_layer=4)
    tcfg = TrainConfig(steps=150, batch_size=32, seq_len=64, lr=1e-3)
    train(mcfg, TrainConfig(steps=5), task)  # warm-up
    plain, monitored = [], []
    for r in range(repeats):
        for with_monitor in ((False, True) if r % 2 == 0 else (True, False)):
            t0 = time.perf_counter()
            train(mcfg, tcfg, task, [HealthMonitor()] if with_monitor else [])
            (monitored if with_monitor else plain).append(time.perf_counter() - t0)
    p, m = statistics.median(plain), statistics.median(monitored)
    print(f"plain   : {p:.2f}s (runs {[round(x, 2) for x in plain]})")
    print(f"monitor : {m:.2f}s (runs {[round(x, 2) for x in monitored]})")
    print(f"ratio monitor/plain = {m / p:.3f}  (overhead {100 * (m / p - 1):+.1f} %, target <= +5 %)")


if __name__ == "__main__":
    main()
