"""`faultlens scan`: run probe families on one or more models (locally or on Ray), resumably, and print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from faultlens.commands.api_scan import (ApiBaseOpt, ApiConcurrencyOpt, ApiEndpointOpt, ApiKeyEnvOpt, ApiModelOpt,
                                         ApiOptions, ApiRetriesOpt, ApiTimeoutOpt)
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
        console.print(f"[yellow]finding[/] [bold]{escape(f.category)}[/]: {escape(f.message)}", highlight=False)


def print_comparison(store, run_ids: list[str], models: list[str]) -> None:
    """Cross-model comparison of the runs just made (faultlens.probes.compare, as `faultlens compare` does)."""
    from faultlens.probes import compare as C

    from faultlens.commands.compare import print_rates_and_agreement

    df = C.load_results(store, run_ids)
    sizes = C.run_sizes(store, run_ids)
    label = {r: f"{Path(m).name or m}\n{r}" for r, m in zip(run_ids, models)}
    print_rates_and_agreement(df, run_ids, label, sizes)
    # A slope through two sizes has no spread to judge; `faultlens compare --sizes` shows it anyway.
    for s in (C.scale_trend(df, sizes) if sum(1 for v in sizes.values() if v) >= 3 else []):
        console.print(f"[bold]{s.probe}[/]: failure rate vs size slope {s.slope:+.3f} per 10x params "
                      f"[{s.slope_ci[0]:+.3f}, {s.slope_ci[1]:+.3f}] → {s.verdict}", highlight=False)
    console.print(f"[dim]more: faultlens compare {' '.join(run_ids)}[/]")


def _scan_api(api, cfg, store, run_id, resume) -> None:
    """Probe an API model (score mode when the server returns prompt logprobs, else generation + judges)."""
    from dataclasses import asdict, replace

    from faultlens.commands.api_scan import open_api_adapter
    from faultlens.probes.runner import run_scan
    from faultlens.store import open_store

    st = open_store(store)
    adapter = open_api_adapter(api)
    cfg = replace(cfg, model=f"{api.model}@{api.base}", features=False)
    try:
        with progress_bar() as update:
            report = run_scan(adapter, st, cfg, run_id=run_id, resume=resume, progress=update)
        st.update_config(report.run_id, api=asdict(api))
    finally:
        getattr(adapter, "close", lambda: None)()
    print_analyses(report.analyses)
    console.print(f"run [bold]{report.run_id}[/]: {report.n_scored} cases scored, {report.n_skipped} already stored; "
                  f"store: {st.location}", highlight=False)


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
        attribute: int = typer.Option(0, "--attribute", help="Explain the N worst failing cases of each probe (contrastive LRP)."),
        api_base: Optional[str] = ApiBaseOpt,
        api_model: Optional[str] = ApiModelOpt,
        api_key_env: Optional[str] = ApiKeyEnvOpt,
        api_endpoint: str = ApiEndpointOpt,
        api_timeout: float = ApiTimeoutOpt,
        api_retries: int = ApiRetriesOpt,
        api_concurrency: int = ApiConcurrencyOpt,
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
                         probe=ProbeConfig(case_set=case_set, cases_file=cases, n_per_cell=n_per_cell, seed=seed),
                         attribute_failures=attribute)
        if api_base:  # a black-box model behind an OpenAI-compatible server: one in-process run
            api = ApiOptions(api_base, api_model or names[0], api_key_env, api_endpoint, api_timeout, api_retries, api_concurrency)
            _scan_api(api, cfg, store, run_id, resume)
            return
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
