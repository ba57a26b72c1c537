"""`faultlens api-check` and the `--api-*` options that point a command at an OpenAI-compatible server.

`scan` (and any other command that takes a model) builds an `ApiOptions` from its `--api-*`
flags and calls `open_api_adapter`; `api-check` tells the user, before a long scan, what the
server can do and so which mode the probes will run in.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Optional

import typer
from rich.table import Table

from faultlens.commands.common import console
from faultlens.errors import FaultlensError

ApiBaseOpt = typer.Option(None, "--api-base", help="OpenAI-compatible server URL (e.g. http://127.0.0.1:8000/v1) to probe instead of a local model.")
ApiModelOpt = typer.Option(None, "--api-model", help="Model id on that server (see GET /v1/models; default: the MODEL argument).")
ApiKeyEnvOpt = typer.Option(None, "--api-key-env", help="Name of the environment variable holding the API key (never pass the key itself).")
ApiEndpointOpt = typer.Option("chat", "--api-endpoint", help="chat or completions (base models without a chat template need completions).")
ApiTimeoutOpt = typer.Option(30.0, "--api-timeout", help="Seconds per request.")
ApiRetriesOpt = typer.Option(3, "--api-retries", help="Retries on 408/409/429/5xx and connection errors (exponential backoff).")
ApiConcurrencyOpt = typer.Option(4, "--api-concurrency", help="Most requests in flight at once.")


@dataclass(frozen=True)
class ApiOptions:
    """Where and how to reach an OpenAI-compatible server; `asdict` of it is safe to store (no key)."""

    base: str
    model: str
    key_env: str | None = None
    endpoint: str = "chat"
    timeout: float = 30.0
    retries: int = 3
    concurrency: int = 4


def open_api_adapter(opts: ApiOptions, check: bool = True):
    """An `OpenAIAdapter` for `opts`; the key is read from `$key_env`; `check` fails early if unreachable."""
    from faultlens.models.openai_api import OpenAIAdapter

    key = None
    if opts.key_env:
        key = os.environ.get(opts.key_env)
        if not key:
            raise FaultlensError(f"--api-key-env {opts.key_env}: that environment variable is empty or unset; export it first.")
    adapter = OpenAIAdapter(opts.base, opts.model, api_key=key, timeout=opts.timeout, max_retries=opts.retries,
                            concurrency=opts.concurrency, endpoint=opts.endpoint)
    if check:
        try:
            adapter.check()
        except FaultlensError:
            adapter.close()
            raise
    return adapter


def register(app: typer.Typer) -> None:
    @app.command("api-check")
    def api_check(
        api_base: str = typer.Option(..., "--api-base", help=ApiBaseOpt.help),
        api_model: str = typer.Option(..., "--api-model", help=ApiModelOpt.help),
        api_key_env: Optional[str] = ApiKeyEnvOpt,
        api_endpoint: str = ApiEndpointOpt,
        api_timeout: float = ApiTimeoutOpt,
        api_retries: int = ApiRetriesOpt,
    ) -> None:
        """Check an OpenAI-compatible server: reachable, model listed, generation, log-probs; say which scan mode applies."""
        opts = ApiOptions(api_base, api_model, api_key_env, api_endpoint, api_timeout, api_retries, 1)
        with open_api_adapter(opts) as ad:
            gen = ad.generate_detailed(["Once upon a time"], max_new_tokens=8)[0]
            scoring = ad.supports_prompt_logprobs()
            feats = ad.blackbox_features("Once upon a time", gen.text)
        t = Table(title=f"{ad.base_url} · {api_model}", show_header=False)
        t.add_row("settings", ", ".join(f"{k}={v}" for k, v in asdict(opts).items() if k not in ("base", "model")))
        t.add_row("generation", repr(gen.text[:60]))
        t.add_row("token log-probs in generation", "yes" if gen.tokens else "no")
        t.add_row("prompt log-probs (echo)", "yes" if scoring else "no")
        t.add_row("black-box features", f"{sum(v == v for v in feats.values())} of {len(feats)} available")
        t.add_row("scan mode", "log-prob scoring (same numbers as a local model)" if scoring
                  else "generation (a case passes when the model writes the target)")
        console.print(t)
