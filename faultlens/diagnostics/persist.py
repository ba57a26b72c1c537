"""Write attention diagnostics into the run store (names per the store conventions) and print
the per-layer table. Used by `faultlens attention` and the demo step."""

from __future__ import annotations

from typing import Sequence

import torch
from rich.console import Console
from rich.table import Table

from faultlens.diagnostics.analyze import AttentionSummary, attention_features
from faultlens.diagnostics.collect import CollectConfig, collect
from faultlens.types import Feature, Finding

RUN = "__run__"


def run_features(summary: AttentionSummary, run_id: str) -> list[Feature]:
    """Per layer × head and per layer values as `__run__` features."""
    rows: list[Feature] = []
    per_head = {"attn.entropy": summary.entropy_mean, "attn.entropy_min": summary.entropy_min,
                "attn.sink_mass": summary.sink_mass, "attn.max_logit": summary.max_logit}
    per_layer = {"resid.token_uniformity": summary.token_uniformity, "resid.effective_rank": summary.effective_rank,
                 "lazy.cos": summary.lazy_cos, "lazy.skip_loss_delta": summary.skip_loss_delta,
                 "attn.sink_share": summary.sink_share}
    for li, layer in enumerate(summary.layers):
        for name, t in per_head.items():
            if t is not None:
                rows += [Feature(run_id, RUN, f"{name}.L{layer}.H{h}", float(t[li, h])) for h in range(summary.heads)]
        for name, t in per_layer.items():
            if t is not None:
                rows.append(Feature(run_id, RUN, f"{name}.L{layer}", float(t[li])))
    return rows


def store_heatmaps(store, run_id: str, adapter, texts: Sequence[str], case_ids: Sequence[str],
                   layers: Sequence[int] | None = None, max_tokens: int = 256) -> int:
    """`attention/{case_id}/L{i}` float16 ``[H, T, T]`` patterns (one eager forward per text)."""
    n = 0
    for text, cid in zip(texts, case_ids):
        ids = adapter.encode(text)[:max_tokens]
        batch = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
        stats = collect(adapter, batch, CollectConfig(layers=tuple(layers) if layers else None, mode="eager",
                                                      mass=False, residual=False, keep_patterns=True))
        tokens = adapter.tokenizer.convert_ids_to_tokens(ids)
        for i, d in stats.items():
            store.put_artifact(run_id, f"attention/{cid}/L{i}", d["pattern"][0].to(torch.float16).numpy(), {"tokens": tokens})
            n += 1
    return n


def save(store, run_id: str, adapter, summary: AttentionSummary, findings: list[Finding], texts: Sequence[str],
         case_ids: Sequence[str], spans: Sequence | None = None, layers: Sequence[int] | None = None,
         heatmaps: int = 1) -> None:
    """Everything `faultlens attention` produces: features, summary artifact, heat maps, findings."""
    store.add_features(run_features(summary, run_id))
    feats = attention_features(adapter, list(texts), spans, CollectConfig(layers=tuple(layers) if layers else None, residual=False))
    store.add_features([Feature(run_id, cid, k, v) for cid, f in zip(case_ids, feats) for k, v in f.items()])
    store.put_artifact(run_id, "attention/summary", summary.to_json())
    if heatmaps:
        store_heatmaps(store, run_id, adapter, texts[:heatmaps], case_ids[:heatmaps], layers)
    store.add_findings(findings)


def table(summary: AttentionSummary) -> Table:
    """Per-layer summary: entropy range, strongest sink, max logit, rank, laziness."""
    t = Table(title=f"attention health ({summary.n_texts} texts, {summary.heads} heads)")
    for col in ("L", "ent", "low head", "sink α", "Gu", "max lg", "unif", "erank", "lazy", "skip Δ"):
        t.add_column(col, justify="right")
    fmt = lambda x, p=3: "—" if x is None else f"{float(x):.{p}f}"  # noqa: E731
    for li, layer in enumerate(summary.layers):
        pick = lambda x: None if x is None else x[li]  # noqa: E731
        t.add_row(
            str(layer), fmt(summary.entropy_mean[li].nanmean()),
            f"H{int(summary.entropy_mean[li].nan_to_num(9).argmin())} {fmt(summary.entropy_mean[li].nan_to_num(9).min())}",
            "—" if summary.sink_mass is None else f"H{int(summary.sink_mass[li].argmax())} {fmt(summary.sink_mass[li].max(), 2)}",
            fmt(pick(summary.sink_share), 2), fmt(pick(summary.max_logit).max() if summary.max_logit is not None else None, 1),
            fmt(pick(summary.token_uniformity)), fmt(pick(summary.effective_rank), 1), fmt(pick(summary.lazy_cos)),
            "—" if summary.skip_loss_delta is None else f"{float(summary.skip_loss_delta[li]):+.3f}",
        )
    return t


def print_report(console: Console, summary: AttentionSummary, findings: list[Finding]) -> None:
    console.print(table(summary))
    if not findings:
        console.print("[green]no attention findings[/] at the default thresholds")
    for f in findings:
        console.print(f"[yellow]{f.category}[/]: {f.message}", highlight=False)
