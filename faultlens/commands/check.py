"""`faultlens check TARGET`: ABNN attention fault property checks on a model directory or module factory."""

from __future__ import annotations

import time
from typing import Optional

import typer

from faultlens.commands.common import StoreOpt, console

HELP = """Run the attention fault checks on TARGET and store the findings.

TARGET is a local Hugging Face model directory (or shipped name, e.g. stories260k) or
path/to/file.py:factory, a zero-argument callable returning an nn.Module whose forward is
forward(x, attention_mask=None): x [B, T, D] float, attention_mask [B, T] (1 = real token),
returning a tensor shaped like x (or a tuple starting with one). Set is_causal / positional /
num_heads on the module so the checker knows what to expect. A factory may also return an HF
PreTrainedModel. Exit status: 0 clean, 1 fault found, 2 bad input."""


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def check(
        target: str = typer.Argument(..., help="HF model directory / shipped name, or file.py:factory."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object per finding (nothing else on stdout)."),
        checks: Optional[str] = typer.Option(None, "--checks", help="Comma-separated check names (default: all)."),
        seq_len: int = typer.Option(12, "--seq-len", help="Tokens per test sequence (>= 8)."),
        threads: int = typer.Option(1, "--threads", help="torch CPU threads (small models run fastest on 1)."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        import torch

        from faultlens.errors import FaultlensError
        from faultlens.faults.checks import checks as registry, run_checks
        from faultlens.faults.report import json_lines, table, to_findings
        from faultlens.faults.target import load_target
        from faultlens.store import open_store

        names = registry.resolve(checks) if checks else None
        if seq_len < 8:
            raise FaultlensError("--seq-len must be at least 8 (the causality and window tests need room).")
        torch.set_num_threads(max(1, threads))
        t0 = time.perf_counter()
        tgt = load_target(target)
        outcomes = run_checks(tgt, names, seq_len=seq_len)
        secs = time.perf_counter() - t0
        st = open_store(store)
        run_id = st.create_run(tgt.name, {"target": target, "kind": tgt.kind, "checks": names or "all",
                                          "seq_len": seq_len}, kind="check")
        found = to_findings(run_id, outcomes)
        st.add_findings(found)
        st.set_status(run_id, "done")
        if json_out:
            for line in json_lines(outcomes):
                typer.echo(line)
        else:
            console.print(table(outcomes, f"faultlens check {target}"))
            n_skip = sum(o.status == "skip" for o in outcomes)
            console.print(f"{len(found)} finding(s), {len(outcomes) - len(found) - n_skip} passed, {n_skip} skipped "
                          f"in {secs:.1f} s; run {run_id} in {st.location}")
        if found:
            # typer.Exit(1) would be swallowed: cli.main runs app(standalone_mode=False) and ignores the
            # returned exit code, so exit 1 goes through FaultlensError's exit_code instead.
            raise FaultlensError(f"{len(found)} attention fault finding(s) in {target} (run {run_id}).", exit_code=1)
