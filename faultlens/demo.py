"""`faultlens demo`: every capability's showcase on the shipped model, in one run.

Each capability registers a step with `@demo_steps.register(name)` as a function
``step(ctx: DemoContext) -> None`` plus an `order` attribute (lower runs first). Steps print
a short summary with `ctx.console` and write to `ctx.store` under `ctx.run_id`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rich.console import Console

from faultlens.registry import Registry
from faultlens.store import Store

demo_steps: Registry[Callable[["DemoContext"], None]] = Registry("demo step", "demo-steps")


@dataclass
class DemoContext:
    """What every demo step gets: the loaded shipped model, the store and the demo run."""

    adapter: Any
    store: Store
    run_id: str
    console: Console
    out_dir: Any
    fast: bool = False
    notes: dict = field(default_factory=dict)  # steps may leave things for later steps


def order_of(name: str) -> int:
    return getattr(demo_steps.get(name), "order", 50)


def run_demo(ctx: DemoContext, only: list[str] | None = None) -> dict[str, float]:
    """Run the registered steps in order; return seconds per step."""
    # Import the modules that register steps (kept lazy so `import faultlens` stays light).
    import faultlens.demo_steps  # noqa: F401

    names = sorted(only or demo_steps.names(), key=order_of)
    times = {}
    for name in names:
        t0 = time.perf_counter()
        ctx.console.rule(f"[bold]{name}")
        demo_steps.get(name)(ctx)
        times[name] = time.perf_counter() - t0
    return times
