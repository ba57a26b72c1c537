"""Token importance: the prompt shaded by (contrastive) relevance, one toggle per method,
faithfulness numbers, and the cross-layer attribution graph.

Reads `attribution/{case}/{method}` JSON ({"tokens", "relevance", "target", "foil", "method",
"faithfulness"}) and `attribution/{case}/graph` ({"nodes", "edges"}). Relevance is shown
normalised per method by its largest |value|: red pushes towards the target, blue towards the
foil (the contrastive reading of Yin & Neubig 2022).
"""

from __future__ import annotations

import math

import numpy as np

from faultlens.report.figures import Figures, layout, plot_text
from faultlens.report.sections import Section, report_sections
from faultlens.report.view import RunView

MAX_CASES = 60
MAX_EDGES = 300
MAX_NODES = 400


def shade(r: float) -> str:
    """Background colour for a relevance in [-1, 1]: red positive, blue negative."""
    if r is None or not math.isfinite(r):
        return "transparent"
    a = min(1.0, abs(r)) * 0.85
    return f"rgba(214,69,65,{a:.3f})" if r >= 0 else f"rgba(52,103,170,{a:.3f})"


def _method_view(payload: dict, method: str) -> dict:
    tokens = [str(t) for t in payload.get("tokens") or []]
    rel = np.array([np.nan if v is None else v for v in payload.get("relevance") or []], dtype=float)
    rel = rel[: len(tokens)]
    scale = np.nanmax(np.abs(rel)) if rel.size and np.isfinite(rel).any() else 1.0
    scale = scale if scale > 0 else 1.0
    shown = [t.replace("▁", " ").replace("Ġ", " ").replace("Ċ", "\n") for t in tokens]  # SentencePiece / GPT-2 marks
    toks = []
    for i, t in enumerate(shown):
        r = float(rel[i]) if i < rel.size else math.nan
        toks.append({"text": t,
                     "bg": shade(r / scale if math.isfinite(r) else math.nan),
                     "title": f"{i}: {r:.4g}" if math.isfinite(r) else f"{i}: –"})
    top = [int(i) for i in np.argsort(-np.nan_to_num(np.abs(rel), nan=-1))[:3]] if rel.size else []
    return {"method": str(payload.get("method") or method), "tokens": toks,
            "top": [(shown[i], float(rel[i])) for i in top if i < len(tokens)],
            "faithfulness": {k: v for k, v in (payload.get("faithfulness") or {}).items()
                             if isinstance(v, (int, float)) or v is None}}


def _graph_figure(figs: Figures, graph: dict, case_id: str) -> str | None:
    nodes = {str(n.get("id")): n for n in graph.get("nodes") or [] if "id" in n}
    if not nodes:
        return None
    edges = sorted(graph.get("edges") or [], key=lambda e: -abs(e.get("weight") or 0))[:MAX_EDGES]
    traces = []
    for sign, color in ((1, "rgba(214,69,65,0.55)"), (-1, "rgba(52,103,170,0.55)")):
        xs, ys = [], []
        for e in edges:
            a, b, w = nodes.get(str(e.get("source"))), nodes.get(str(e.get("target"))), e.get("weight") or 0
            if a is None or b is None or (w >= 0) != (sign > 0):
                continue
            xs += [a.get("pos"), b.get("pos"), None]
            ys += [a.get("layer"), b.get("layer"), None]
        if xs:
            traces.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "hoverinfo": "skip",
                           "name": "positive edges" if sign > 0 else "negative edges",
                           "line": {"color": color, "width": 1.5}})
    # Keep the nodes the kept edges touch, then the most relevant others, up to MAX_NODES.
    touched = {str(e.get(k)) for e in edges for k in ("source", "target")}
    ranked = sorted(nodes, key=lambda k: (k not in touched, -abs(nodes[k].get("relevance") or 0.0)))
    nodes = {k: nodes[k] for k in ranked[:MAX_NODES]}
    rel = np.array([n.get("relevance") or 0.0 for n in nodes.values()], dtype=float)
    size = 6 + 18 * np.abs(rel) / (np.abs(rel).max() or 1.0)
    traces.append({"type": "scatter", "mode": "markers", "name": "nodes",
                   "x": [n.get("pos") for n in nodes.values()], "y": [n.get("layer") for n in nodes.values()],
                   "text": [plot_text(n.get("id")) for n in nodes.values()],
                   "marker": {"size": size.round(1).tolist(), "color": rel.round(5).tolist(), "colorscale": "RdBu", "cmid": 0, "colorbar": {"title": {"text": "relevance"}},
                              "line": {"width": 0.5, "color": "#333"}},
                   "hovertemplate": "%{text}<br>layer %{y}, pos %{x}<br>relevance %{marker.color:.4g}<extra></extra>"})
    title = f"attribution graph: {plot_text(case_id)} (top {len(edges)} edges by |weight|)"
    return figs.add(traces, layout(title={"text": title}, height=420, legend={"orientation": "h", "y": -0.2}, xaxis={"title": {"text": "position"}},
                                   yaxis={"title": {"text": "layer"}, "dtick": 1}))


def build(view: RunView, figs: Figures) -> dict | None:
    index = view.artifact_keys("attribution/")
    if not index:
        return None
    by_case: dict[str, dict[str, str]] = {}
    for a in index:
        rest = a["key"][len("attribution/"):]
        if "/" in rest and a["kind"] == "json":
            case, method = rest.rsplit("/", 1)
            by_case.setdefault(case, {})[method] = a["key"]
    chosen = list(by_case)[:MAX_CASES]
    payloads = view.artifacts([k for c in chosen for k in by_case[c].values()])
    cases = []
    for c in chosen:
        methods = {m: payloads[k] for m, k in by_case[c].items() if k in payloads and m != "graph"}
        views = [_method_view(p, m) for m, p in methods.items() if isinstance(p, dict)]
        first = next(iter(methods.values()), {}) if methods else {}
        graph = payloads.get(by_case[c].get("graph", ""))
        fig = _graph_figure(figs, graph, c) if isinstance(graph, dict) else None
        if not views and fig is None:
            continue
        metrics = sorted({k for v in views for k in v["faithfulness"]})
        cases.append({"case_id": c, "target": str(first.get("target", "")), "foil": str(first.get("foil", "")),
                      "methods": views, "graph_fig": fig, "faith_cols": metrics})
    if not cases:
        return None
    return {"cases": cases, "n_cases": len(by_case)}


report_sections.add("tokens", Section("Token importance", 40, "section_tokens.html.j2", build))
