"""`faultlens demo`: the whole flow on the shipped model, offline, in about two minutes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from faultlens.commands.common import StoreOpt, console, load_adapter


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        model: str = typer.Option("stories260k", "--model", help="Shipped model name or local HF directory."),
        out: Path = typer.Option(Path("faultlens-out"), "--out", "-o", help="Folder for the report and other files."),
        fast: bool = typer.Option(False, "--fast", help="Fewer cases per probe (for a quick look)."),
        steps: Optional[str] = typer.Option(None, "--steps", help="Comma-separated demo steps to run (default all)."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Run every capability on the shipped model and write everything to the run store."""
        from faultlens.demo import DemoContext, demo_steps, run_demo
        from faultlens.store import open_store
        import faultlens.demo_steps  # noqa: F401  (registers the steps)

        t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        st = open_store(store or out / "store.sqlite")
        only = demo_steps.resolve(steps) if steps else None
        adapter = load_adapter(model)
        run_id = st.create_run(model, {"model": model, "demo": True, "fast": fast, "steps": only or demo_steps.names()}, kind="demo")
        ctx = DemoContext(adapter=adapter, store=st, run_id=run_id, console=console, out_dir=out, fast=fast)
        try:
            times = run_demo(ctx, only)
        except BaseException:
            st.set_status(run_id, "failed")
            raise
        st.set_status(run_id, "done")
        console.rule("[bold]summary")
        findings = st.to_pandas("findings", run_id)
        console.print(f"run [bold]{run_id}[/] in {time.perf_counter() - t0:.0f} s "
                      f"({', '.join(f'{k} {v:.0f}s' for k, v in times.items())})")
        console.print(f"store: {st.location}  ·  {st.count('results', run_id)} results, "
                      f"{st.count('features', run_id)} features, {len(findings)} findings, "
                      f"{st.count('artifacts', run_id)} artifacts")
        for _, f in findings.iterrows():
            console.print(f"  [yellow]•[/] [bold]{escape(f.category)}[/] ({escape(f.source)}): {escape(f.message)}", highlight=False)
        if "report" in ctx.notes:
            console.print(f"report: [bold]{ctx.notes['report']}[/]")
