"""`faultlens scan`: run probe families on a model, resumably, and print a summary."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from faultlens.commands.common import ModelArg, StoreOpt, console, load_adapter, progress_bar


def print_analyses(analyses) -> None:
    """One row per probe value: accuracy with CI and mean margin; then the findings."""
    t = Table(title="probe results", show_lines=False)
    for col in ("probe", "variable", "value", "n", "accuracy [95% CI]", "mean margin"):
        t.add_column(col, justify="right" if col in ("n", "mean margin") else "left")
    for name, a in analyses.items():
        if a.effect is None:
            continue
        for v in a.effect.values:
            t.add_row(name, a.effect.variable, str(v.value), str(v.n),
                      f"{v.accuracy:.0%} [{v.acc_ci[0]:.0%}, {v.acc_ci[1]:.0%}]", f"{v.margin:+.2f}")
    console.print(t)
    findings = [f for a in analyses.values() for f in a.findings]
    if not findings:
        console.print("[green]no significant effects[/] (Holm-corrected, α = 0.05)")
    for f in findings:
        console.print(f"[yellow]finding[/] [bold]{f.category}[/]: {f.message}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def scan(
        model: str = ModelArg,
        probes: str = typer.Option("position", "--probes", "-p", help="Comma-separated probe names, or 'all'."),
        cases: Optional[str] = typer.Option(None, "--cases", help="A JSONL case file instead of the shipped set."),
        case_set: str = typer.Option("tiny", "--case-set", help="Shipped case set: tiny (TinyStories-scale) or general."),
        n_per_cell: Optional[int] = typer.Option(None, "--n-per-cell", help="At most N minimal sets per probe."),
        seed: int = typer.Option(0, "--seed"),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Name the run (needed with --resume)."),
        resume: bool = typer.Option(False, "--resume", help="Continue run --run-id, scoring only what is missing."),
        no_features: bool = typer.Option(False, "--no-features", help="Skip capturing internal per-case features."),
        chunk: int = typer.Option(48, "--chunk", help="Cases per committed transaction (smaller = finer resume points)."),
        attn: str = typer.Option("sdpa", "--attn", help="Attention implementation: sdpa or eager."),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the model's own Python code (off by default)."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Run probe families on MODEL; results, features and findings go to the run store."""
        from faultlens.probes import load_all, probes as registry
        from faultlens.probes.base import ProbeConfig
        from faultlens.probes.runner import ScanConfig, run_scan
        from faultlens.store import open_store

        load_all()
        names = tuple(registry.resolve(probes))
        st = open_store(store)
        cfg = ScanConfig(model=model, probes=names, features=not no_features, chunk=chunk,
                         probe=ProbeConfig(case_set=case_set, cases_file=cases, n_per_cell=n_per_cell, seed=seed))
        adapter = load_adapter(model, attn, trust_remote_code)
        with progress_bar() as update:
            report = run_scan(adapter, st, cfg, run_id=run_id, resume=resume, progress=update)
        print_analyses(report.analyses)
        console.print(f"run [bold]{report.run_id}[/]: {report.n_scored} cases scored, {report.n_skipped} already stored; store: {st.location}")
