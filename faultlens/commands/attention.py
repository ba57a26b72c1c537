"""`faultlens attention`: attention health (entropy, sinks, rank collapse, lazy layers,
position profile) of a model on some texts, stored in the run store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from faultlens.commands.common import ModelArg, StoreOpt, console, load_adapter
from faultlens.errors import FaultlensError


def read_texts(text: Optional[str], file: Optional[Path]) -> tuple[list[str], list[str], list]:
    """(texts, case ids, key spans) from --text or a JSONL file of {"id", "text"|"prompt", ["key_span"]}."""
    if (text is None) == (file is None):
        raise FaultlensError("Give exactly one of --text TEXT or --file FILE.jsonl.")
    if text is not None:
        if not text.strip():
            raise FaultlensError("--text is empty; pass the text to analyse.")
        return [text], ["text0"], [None]
    if not file.is_file():
        raise FaultlensError(f"{file} does not exist; pass a JSONL file with one {{\"text\": ...}} object per line.")
    texts, ids, spans = [], [], []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FaultlensError(f"{file}:{n} is not valid JSON ({exc.msg}); one object per line.") from None
        t = d.get("text", d.get("prompt")) if isinstance(d, dict) else None
        if not isinstance(t, str) or not t.strip():
            raise FaultlensError(f"{file}:{n} has no non-empty \"text\" (or \"prompt\") field.")
        texts.append(t)
        ids.append(str(d.get("id", f"text{len(ids)}")))
        span = d.get("key_span") or (d.get("meta") or {}).get("key_span")
        spans.append(tuple(span) if span else None)
    if not texts:
        raise FaultlensError(f"{file} holds no texts.")
    return texts, ids, spans


def parse_layers(spec: Optional[str]) -> Optional[tuple[int, ...]]:
    if not spec:
        return None
    try:
        return tuple(int(x) for x in spec.split(",") if x.strip())
    except ValueError:
        raise FaultlensError(f"--layers {spec!r}: give comma-separated layer numbers, e.g. 0,2,3.") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def attention(
        model: str = ModelArg,
        text: Optional[str] = typer.Option(None, "--text", help="One text to analyse."),
        file: Optional[Path] = typer.Option(None, "--file", help="JSONL: one {\"id\", \"text\", [\"key_span\": [a, b]]} per line."),
        layers: Optional[str] = typer.Option(None, "--layers", help="Comma-separated layers (default all)."),
        mode: str = typer.Option("stream", "--mode", help="stream (q/k in query blocks, no O(n²) per layer) or eager (materialised patterns)."),
        block: int = typer.Option(64, "--block", help="Queries per streamed block."),
        skip_loss: bool = typer.Option(True, "--skip-loss/--no-skip-loss", help="Measure the loss increase when each attention block is skipped."),
        heatmaps: int = typer.Option(1, "--heatmaps", help="Store attention heat maps of the first N texts."),
        attn: str = typer.Option("sdpa", "--attn", help="Attention implementation: sdpa or eager."),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Name the run."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Per-layer attention health of MODEL on --text or --file; everything goes to the run store."""
        from faultlens.diagnostics.analyze import AnalyzeConfig, analyze
        from faultlens.diagnostics.collect import CollectConfig
        from faultlens.diagnostics.findings import findings_for
        from faultlens.diagnostics.persist import print_report, save
        from faultlens.store import open_store

        texts, ids, spans = read_texts(text, file)
        lay = parse_layers(layers)
        if block < 1:
            raise FaultlensError("--block must be a positive number of queries.")
        cfg = AnalyzeConfig(collect=CollectConfig(layers=lay, mode=mode, block=block), skip_loss=skip_loss)
        st = open_store(store)
        adapter = load_adapter(model, attn)
        rid = st.create_run(adapter.name, {"command": "attention", "texts": len(texts), "layers": lay, "mode": mode,
                                           "block": block, "attn": attn}, kind="attention", run_id=run_id)
        try:
            with console.status("analysing attention …"):
                summary = analyze(adapter, texts, cfg)
                findings = findings_for(summary, rid)
                save(st, rid, adapter, summary, findings, texts, ids, spans if any(spans) else None, lay, heatmaps)
        except BaseException:
            st.set_status(rid, "failed")
            raise
        st.set_status(rid, "done")
        print_report(console, summary, findings)
        console.print(f"run [bold]{rid}[/] in {st.location}")
