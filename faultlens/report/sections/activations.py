"""Activations: residual-stream norms per layer × position, and per layer over all cases.

Reads `activations/{case}/resid_norm` arrays [L+1, T] (row 0 = embeddings) with meta tokens,
and the per-case features `resid.norm.L{i}` (mean per layer over cases, with the min–max band).
"""

from __future__ import annotations

import re

import numpy as np

from faultlens.report.figures import PALETTE, Figures, layout, plot_text
from faultlens.report.sections import Section, report_sections
from faultlens.report.view import RunView

MAX_CASES = 12
MAX_POSITIONS = 256
NORM_KEY = re.compile(r"^activations/(?P<case>.+)/resid_norm$")
LAYER = re.compile(r"\.L(\d+)$")


def _case_figure(figs: Figures, case_id: str, norms: np.ndarray, tokens: list[str]) -> str:
    norms = np.asarray(norms, dtype=np.float32)  # [L+1, T]
    step = max(1, int(np.ceil(norms.shape[1] / MAX_POSITIONS)))
    shown = norms[:, ::step]  # [L+1, T'] every step-th position, enough to see the shape
    xs = list(range(0, norms.shape[1], step))
    ticks = [plot_text(tokens[i], 12) if i < len(tokens) else str(i) for i in xs]
    trace = {"type": "heatmap", "z": shown.round(3).tolist(), "x": xs,
             "y": [f"L{i}" if i else "emb" for i in range(norms.shape[0])], "colorscale": "Viridis", "colorbar": {"title": {"text": "‖h‖"}},
             "customdata": [ticks] * shown.shape[0],
             "hovertemplate": "%{y}, pos %{x} (%{customdata})<br>norm %{z:.3g}<extra></extra>"}
    axis = {"tickmode": "array", "tickvals": xs if len(xs) <= 64 else xs[:: max(1, len(xs) // 48)],
            "ticktext": ticks if len(xs) <= 64 else ticks[:: max(1, len(xs) // 48)], "tickfont": {"size": 9},
            "title": {"text": "position"}}
    title = f"residual-stream norm: {plot_text(case_id)}" + (f" (every {step}th position)" if step > 1 else "")
    return figs.add([trace], layout(title={"text": title}, xaxis=axis, height=max(280, 60 + 26 * norms.shape[0]),
                                    yaxis={"title": {"text": "layer"}}))


def _layer_figure(figs: Figures, df) -> str | None:
    df = df.assign(layer=df["name"].map(lambda n: int(LAYER.search(n).group(1)) if LAYER.search(n) else None))
    df = df.dropna(subset=["layer", "value"])
    if df.empty:
        return None
    g = df.groupby("layer")["value"]
    layers = [int(x) for x in g.mean().index]
    band = {"type": "scatter", "x": layers + layers[::-1], "y": g.max().tolist() + g.min().tolist()[::-1],
            "mode": "lines", "fill": "toself", "fillcolor": "rgba(59,110,168,0.15)", "line": {"width": 0}, "name": "min–max",
            "hoverinfo": "skip"}
    mean = {"type": "scatter", "mode": "lines+markers", "x": layers, "y": g.mean().tolist(), "name": "mean",
            "line": {"color": PALETTE[0]}}
    return figs.add([band, mean], layout(title={"text": f"residual norm per layer over {df['case_id'].nunique()} cases"},
                                         xaxis={"title": {"text": "layer"}, "dtick": 1},
                                         yaxis={"title": {"text": "‖h‖"}}, height=300))


def build(view: RunView, figs: Figures) -> dict | None:
    index = [(m["case"], a) for a in view.artifact_keys("activations/") if (m := NORM_KEY.match(a["key"]))]
    feats = view.case_features("resid.norm.L")
    if not index and feats.empty:
        return None
    chosen = index[:MAX_CASES]
    payloads = view.artifacts([a["key"] for _, a in chosen])
    cases = [{"case_id": c, "fig": _case_figure(figs, c, payloads[a["key"]], [str(t) for t in a["meta"].get("tokens") or []])}
             for c, a in chosen if a["key"] in payloads and np.ndim(payloads[a["key"]]) == 2]
    return {"cases": cases, "n_cases": len(index), "layer_fig": None if feats.empty else _layer_figure(figs, feats)}


report_sections.add("activations", Section("Activations", 50, "section_activations.html.j2", build))
