"""Demo step (runs last): write the report of the demo run and print where it is."""

from __future__ import annotations

from pathlib import Path

from faultlens.demo import DemoContext, demo_steps
from faultlens.report.builder import build_report


@demo_steps.register("report")
def step(ctx: DemoContext) -> None:
    """Write report.html for the demo run into the demo's output folder."""
    path = build_report(ctx.store, [ctx.run_id], Path(ctx.out_dir) / "report.html")
    ctx.notes["report"] = str(path)
    ctx.console.print(f"report: [bold]{path}[/] ({path.stat().st_size / 1e6:.1f} MB) — open it in a browser")


step.order = 99
