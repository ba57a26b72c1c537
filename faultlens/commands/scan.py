"""`faultlens scan`: run probe families on one or more models (locally or on Ray), resumably, and print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from faultlens.commands.common import StoreOpt, console, progress_bar


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


def print_comparison(store, run_ids: list[str], models: list[str]) -> None:
    """Cross-model comparison of the runs just made (faultlens.probes.compare, as `faultlens compare` does)."""
    import math

    from faultlens.probes import compare as C

    df = C.load_results(store, run_ids)
    rates = C.failure_rates(df)
    sizes = C.run_sizes(store, run_ids)
    label = {r: Path(m).name or m for r, m in zip(run_ids, models)}
    t = Table(title="failure rate by probe family, model by model [95% CI over minimal sets]")
    t.add_column("probe")
    for r in run_ids:
        t.add_column(f"{label[r]}\n{r}" + (f"\n{sizes[r]:.3g} params" if sizes[r] else ""), justify="right")
    for probe in sorted(set(rates["probe"])):
        cells = []
        for r in run_ids:
            row = rates[(rates["probe"] == probe) & (rates["run_id"] == r)]
            cells.append("—" if row.empty else "{:.0%} [{:.0%}, {:.0%}]".format(*row.iloc[0][["failure_rate", "ci_low", "ci_high"]]))
        t.add_row(probe, *cells)
    console.print(t)
    agree = [a for i, ra in enumerate(run_ids) for rb in run_ids[i + 1:] for a in C.agreement(df, ra, rb)]
    t = Table(title="case-level agreement on failures (Cohen's kappa)")
    for col in ("A vs B", "probe", "shared", "both fail", "only A", "only B", "kappa"):
        t.add_column(col, justify="left" if col in ("A vs B", "probe") else "right")
    for a in agree:
        t.add_row(f"{label[a.run_a]} vs {label[a.run_b]}", a.probe, str(a.n_shared), str(a.both_fail), str(a.only_a), str(a.only_b),
                  "n/a" if math.isnan(a.kappa) else f"{a.kappa:.2f}")
    console.print(t)
    # A slope through two sizes has no spread to judge; `faultlens compare --sizes` shows it anyway.
    for s in (C.scale_trend(df, sizes) if sum(1 for v in sizes.values() if v) >= 3 else []):
        console.print(f"[bold]{s.probe}[/]: failure rate vs size slope {s.slope:+.3f} per 10x params "
                      f"[{s.slope_ci[0]:+.3f}, {s.slope_ci[1]:+.3f}] → {s.verdict}", highlight=False)
    console.print(f"[dim]more: faultlens compare {' '.join(run_ids)}[/]")


def register(app: typer.Typer) -> None:
    @app.command()
    def scan(
        models: Optional[List[str]] = typer.Argument(None, help="One or more shipped model names (stories260k) or local Hugging Face model directories; default stories260k."),
        probes: str = typer.Option("position", "--probes", "-p", help="Comma-separated probe names, or 'all'."),
        cases: Optional[str] = typer.Option(None, "--cases", help="A JSONL case file instead of the shipped set."),
        case_set: str = typer.Option("tiny", "--case-set", help="Shipped case set: tiny (TinyStories-scale) or general."),
        n_per_cell: Optional[int] = typer.Option(None, "--n-per-cell", help="At most N minimal sets per probe."),
        seed: int = typer.Option(0, "--seed"),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Name the run (needed with --resume); with several models the runs are ID-1, ID-2, ..."),
        resume: bool = typer.Option(False, "--resume", help="Continue run --run-id, scoring only what is missing."),
        no_features: bool = typer.Option(False, "--no-features", help="Skip capturing internal per-case features."),
        chunk: int = typer.Option(48, "--chunk", help="Cases per committed transaction (smaller = finer resume points)."),
        attn: str = typer.Option("sdpa", "--attn", help="Attention implementation: sdpa or eager."),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the model's own Python code (off by default)."),
        executor: str = typer.Option("local", "--executor", help="Where units run: local (this process) or ray (Ray actors; needs a PostgreSQL --store)."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="HOST:PORT of an existing Ray cluster's head (default: $RAY_ADDRESS, else a private local Ray)."),
        workers: Optional[int] = typer.Option(None, "--workers", help="Ray worker actors (default: one per CPU of the cluster)."),
        shard_size: int = typer.Option(96, "--shard-size", help="Cases per work unit (the piece a worker runs or Ray retries)."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Run probe families on one or more MODELs; results, features and findings go to the run store.

        Several models run side by side (one run each) and end with a cross-model comparison.
        """
        from faultlens.errors import FaultlensError
        from faultlens.probes.base import ProbeConfig
        from faultlens.probes.runner import ScanConfig
        from faultlens.scale import ExecutorConfig, ModelSpec, scan_models
        from faultlens.store import open_store

        names = list(models or ["stories260k"])
        if chunk < 1 or shard_size < 1 or (workers is not None and workers < 1):
            raise FaultlensError("--chunk, --shard-size and --workers must be at least 1.")
        cfg = ScanConfig(model=names[0], probes=tuple(p.strip() for p in probes.split(",") if p.strip()), features=not no_features, chunk=chunk,
                         probe=ProbeConfig(case_set=case_set, cases_file=cases, n_per_cell=n_per_cell, seed=seed))
        ex_cfg = ExecutorConfig(kind=executor, ray_address=ray_address, workers=workers, shard_size=shard_size)
        specs = [ModelSpec(m, attn, trust_remote_code) for m in names]
        with progress_bar() as update:
            out = scan_models(specs, store, cfg, ex_cfg, run_id=run_id, resume=resume, progress=update,
                              on_status=lambda msg: console.print(f"[dim]{msg}[/]", highlight=False))
        st = open_store(store)
        if len(names) == 1:
            print_analyses(out.reports[0].analyses)
        for m, rep in zip(names, out.reports):
            console.print(f"run [bold]{rep.run_id}[/] ({m}): {rep.n_scored} cases scored, {rep.n_skipped} already stored",
                          highlight=False)
        if len(names) > 1:
            print_comparison(st, out.run_ids, names)
        if out.executor.get("restarted_workers"):
            console.print(f"[yellow]{out.executor['restarted_workers']} worker(s) died and were restarted by Ray; "
                          f"their units were re-run and nothing was stored twice[/]", highlight=False)
        console.print(f"executor: {out.executor['kind']}, {out.n_units} units; store: {st.location}", highlight=False)
