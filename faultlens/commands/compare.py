"""`faultlens compare RUN_A RUN_B ...`: probe failure rates side by side, agreement, and scale."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import List, Optional

import typer
from rich.table import Table

from faultlens.commands.common import StoreOpt, console


def print_rates_and_agreement(df, runs: list[str], label: dict[str, str], size: dict) -> None:
    """Two tables: failure rate per probe family and run (with CIs), and case-level agreement."""
    from faultlens.probes import compare as C

    rates = C.failure_rates(df)
    t = Table(title="failure rate by probe family [95% CI over minimal sets]")
    t.add_column("probe")
    for r in runs:
        t.add_column(label[r] + (f"\n{size[r]:.3g} params" if size.get(r) else ""), justify="right")
    for probe in sorted(set(rates["probe"])):
        cells = []
        for r in runs:
            row = rates[(rates["probe"] == probe) & (rates["run_id"] == r)]
            cells.append("—" if row.empty else "{:.0%} [{:.0%}, {:.0%}]".format(*row.iloc[0][["failure_rate", "ci_low", "ci_high"]]))
        t.add_row(probe, *cells)
    console.print(t)
    agree = [a for i, ra in enumerate(runs) for rb in runs[i + 1:] for a in C.agreement(df, ra, rb)]
    t = Table(title="case-level agreement on failures")
    for col in ("runs", "probe", "shared", "both fail", "only A", "only B", "Cohen's kappa"):
        t.add_column(col, justify="left" if col in ("runs", "probe") else "right")
    for a in agree:
        t.add_row(f"{label[a.run_a]} vs {label[a.run_b]}", a.probe, str(a.n_shared), str(a.both_fail), str(a.only_a),
                  str(a.only_b), "n/a" if math.isnan(a.kappa) else f"{a.kappa:.2f}")
    console.print(t)


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        runs: List[str] = typer.Argument(..., help="Two or more run ids (see `faultlens runs`)."),
        sizes: Optional[str] = typer.Option(None, "--sizes", help="Parameter counts, RUN=N,... or N,N in run order (else read from each run's config)."),
        out: Optional[str] = typer.Option(None, "--out", help="Also write everything as JSON to this file."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Compare probe runs: per-family failure rates, case agreement (Cohen's kappa), failure vs size."""
        from faultlens.errors import FaultlensError
        from faultlens.probes import compare as C
        from faultlens.store import open_store

        if len(runs) < 2:
            raise FaultlensError("compare needs at least two run ids.")
        st = open_store(store)
        df = C.load_results(st, runs)
        size = C.run_sizes(st, runs, C.parse_sizes(sizes, runs))
        print_rates_and_agreement(df, runs, {r: r for r in runs}, size)

        trends = C.scale_trend(df, size)
        if trends:
            t = Table(title="failure rate vs parameter count (slope per 10x params, 95% bootstrap CI)")
            for col in ("probe", "runs", "slope", "95% CI", "Spearman rho", "verdict"):
                t.add_column(col)
            for s in trends:
                t.add_row(s.probe, str(s.n_runs), f"{s.slope:+.3f}", f"[{s.slope_ci[0]:+.3f}, {s.slope_ci[1]:+.3f}]",
                          f"{s.spearman_rho:+.2f}" + ("" if math.isnan(s.spearman_p) else f" (p={s.spearman_p:.2g})"), s.verdict)
            console.print(t)
        else:
            console.print("[dim]no size trend: give --sizes (or record n_params in the runs) for at least two distinct sizes[/]")
        if out:
            rates = C.failure_rates(df)
            agree = [a for i, ra in enumerate(runs) for rb in runs[i + 1:] for a in C.agreement(df, ra, rb)]
            with open(out, "w", encoding="utf-8") as fh:
                json.dump({"sizes": size, "rates": rates.to_dict(orient="records"),
                           "agreement": [asdict(a) for a in agree], "scale": [asdict(s) for s in trends]}, fh, indent=1)
            console.print(f"wrote {out}")
