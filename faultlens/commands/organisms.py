"""`faultlens organisms list|train`: the pathology recipes and planted-bias organisms."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from faultlens.errors import FaultlensError

console = Console()


def _bias_names() -> list[str]:
    from faultlens.organisms.bias_data import bias_generators

    return [f"bias_{n}" for n in bias_generators.names()]


def register(app: typer.Typer) -> None:
    org = typer.Typer(help="Tiny CPU-trained transformers with a known pathology or planted bias.", no_args_is_help=True)
    app.add_typer(org, name="organisms")

    @org.command("list")
    def list_() -> None:
        """List pathology recipes and planted-bias organisms."""
        from faultlens.organisms.bias_data import bias_generators
        from faultlens.organisms.recipes import recipes

        t = Table("name", "kind", "mitigation / twin", "expected findings", "what")
        for n in recipes.names():
            r = recipes.get(n)
            t.add_row(n, "pathology" + (" (slow)" if r.slow else ""), r.mitigation, ", ".join(r.expected), r.doc)
        for n in bias_generators.names():
            t.add_row(f"bias_{n}", "planted bias", "clean twin (--mitigated)", "-", bias_generators.doc(n))
        console.print(t)

    @org.command("train")
    def train_(
        name: str = typer.Argument(..., help="recipe or bias organism name (see `organisms list`)"),
        mitigated: bool = typer.Option(False, "--mitigated", help="train the mitigated / clean twin"),
        out: Path = typer.Option(Path("organisms"), "--out", help="directory to cache trained organisms in"),
        steps: int = typer.Option(0, "--steps", help="override the number of training steps (0 = recipe default)"),
        store: str = typer.Option(None, "--store", help="run store for monitor events and findings"),
    ) -> None:
        """Train one organism (or its twin) and print the monitor's findings / the measured bias."""
        from faultlens.organisms.recipes import recipes, run_twin

        twin = "mitigated" if mitigated else "pathological"
        if name.startswith("bias_"):
            from dataclasses import replace

            from faultlens.organisms.bias_data import bias_generators
            from faultlens.organisms.biases import (
                default_config,
                measure_bias,
                train_bias_organism,
            )

            short = name[len("bias_"):]
            bias_generators.get(short)
            cfg = replace(default_config(short), steps=steps) if steps else default_config(short)
            d = train_bias_organism(short, out / f"{name}-{'clean' if mitigated else 'biased'}", mitigated, cfg)
            m = measure_bias(d)
            console.print(f"saved HF model directory {d}")
            console.print(json.dumps(m, indent=2))
            return
        if name not in recipes:
            recipes.get(name) if not _bias_names() else None
            raise FaultlensError(f"Unknown organism {name!r}; `faultlens organisms list` shows the names "
                                 f"(recipes: {', '.join(recipes.names())}; biases: {', '.join(_bias_names())}).")
        st = None
        if store:
            from faultlens.store import open_store

            st = open_store(store)
        outcome, res, mon = run_twin(recipes.get(name), mitigated, store=st, steps=steps or None)
        d = out / f"{name}-{twin}"
        d.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in res.model.state_dict().items()}, str(d / "model.safetensors"))
        (d / "run.json").write_text(json.dumps({"config": res.config, "fired": outcome.fired,
                                                "numbers": outcome.numbers, "val_loss": outcome.val_loss,
                                                "nan_step": outcome.nan_step}, indent=2, default=str))
        console.print(f"{name} ({twin}): {len(res.losses)} steps in {outcome.seconds:.1f}s, val loss {outcome.val_loss:.3f}")
        for f in mon.findings:
            console.print(f"  [{f.severity}] {f.category} @ step {f.evidence['step']}: {f.message}", highlight=False)
        if not mon.findings:
            console.print("  no findings")
        console.print(f"saved to {d}")
