"""`faultlens guard`: serve a local model behind an OpenAI-compatible endpoint that reports the
predicted failure risk of every request (127.0.0.1 only)."""

from __future__ import annotations

from pathlib import Path

import typer

from faultlens.commands.common import ModelArg, console, load_adapter


def register(app: typer.Typer) -> None:
    @app.command()
    def guard(
        model: str = ModelArg,
        predictor: Path = typer.Option(..., "--predictor", help="A predictor file from `faultlens predict fit ... --features serve`."),
        threshold: float = typer.Option(0.5, "--threshold", "-t", min=0.0, max=1.0, help="Flag requests with risk >= T."),
        refuse: bool = typer.Option(False, "--refuse", help="Do not generate for flagged requests (finish_reason content_filter)."),
        port: int = typer.Option(8008, "--port", help="Port on 127.0.0.1."),
        max_tokens_cap: int = typer.Option(256, "--max-tokens-cap", min=1, help="Most new tokens one request may ask for."),
        top: int = typer.Option(5, "--top", min=1, help="Contributing features returned per response."),
    ) -> None:
        """Serve MODEL on http://127.0.0.1:PORT/v1/{completions,chat/completions} with failure risk."""
        from faultlens.predict import persist
        from faultlens.predict.guard import GuardConfig, build_app
        from faultlens.predict.risk import RiskScorer
        from faultlens.predict.serve import HOST, serve

        est = persist.load(predictor)
        adapter = load_adapter(model)
        scorer = RiskScorer(adapter, est, top_k=top)
        app = build_app(adapter, scorer, GuardConfig(threshold=threshold, refuse=refuse, max_tokens_cap=max_tokens_cap, top_features=top))
        console.print(f"faultlens guard: {model} with {len(scorer.names)} predictor features on http://{HOST}:{port}/v1 "
                      f"(threshold {threshold}{', refusing flagged requests' if refuse else ''})", highlight=False)
        serve(app, port)
