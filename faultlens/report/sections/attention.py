"""Attention: per-layer × head statistics, per-layer tables, position profiles, pattern heat maps.

Statistics come from the `attention/summary` artifact or, failing that, from the run-level
`__run__` features (`attn.entropy.L{i}.H{h}`, ...). Patterns are `attention/{case}/L{i}`
arrays [H, T, T]; each case becomes one heat map with a layer and a head selector whose frames
are block-averaged to at most `MAX_TOKENS` positions and quantised to a byte per cell.
"""

from __future__ import annotations

import math
import re

import numpy as np

from faultlens.report.figures import BLUES, PALETTE, Figures, encode_u8_sqrt, layout, plot_text, pool_square
from faultlens.report.sections import Section, report_sections
from faultlens.report.view import RunView

MAX_CASES = 6
MAX_TOKENS = 48
PATTERN_KEY = re.compile(r"^attention/(?P<case>.+)/L(?P<layer>\d+)$")
STAT_TITLES = {"entropy": "attention entropy (nats)", "sink_mass": "sink mass (attention on token 0)",
               "max_logit": "max pre-softmax logit", "key_span_mass": "key-span mass"}


def _stats(view: RunView) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict | None]:
    """(layer×head grids, per-layer vectors, position profile) from the summary or the features."""
    grids: dict[str, np.ndarray] = {}
    per_layer: dict[str, np.ndarray] = {}
    profile = None
    if view.has_artifact("attention/summary"):
        s = view.artifact("attention/summary")
        for k, v in s.items():
            if k in ("layers", "heads", "position_profile") or not isinstance(v, list) or not v:
                continue
            try:
                arr = np.array(v, dtype=float)
            except (TypeError, ValueError):  # ragged or non-numeric entries have no table column
                continue
            target = {2: grids, 1: per_layer}.get(arr.ndim)  # [L, H] grid or [L] vector; e.g. [L, H, H] is skipped
            if target is not None and k != "layer_ids":
                target[k] = arr
        profile = s.get("position_profile")
    for name, arr in view.layer_head_stats().items():
        short = name.removeprefix("attn.").replace("resid.", "").replace("lazy.cos", "lazy_cos")
        target = {2: grids, 1: per_layer}.get(arr.ndim)  # e.g. head×head redundancy [L, H, H] has no column
        if target is not None:
            target.setdefault(short, arr)
    return grids, per_layer, profile


def _layer_table(grids: dict[str, np.ndarray], per_layer: dict[str, np.ndarray]) -> tuple[list[str], list[list]]:
    n_layers = max([g.shape[0] for g in grids.values()] + [v.shape[0] for v in per_layer.values()])
    cols, rows = ["layer"], [[f"L{i}"] for i in range(n_layers)]
    for name, g in grids.items():
        cols += [f"{name} mean", f"{name} max (head)"]
        for i in range(n_layers):
            row = g[i] if i < g.shape[0] else np.array([np.nan])
            ok = ~np.isnan(row)
            rows[i] += [_fmt(np.nanmean(row)) if ok.any() else "–",
                        f"{_fmt(np.nanmax(row))} (H{int(np.nanargmax(row))})" if ok.any() else "–"]
    for name, v in per_layer.items():
        cols.append(name)
        for i in range(n_layers):
            rows[i].append(_fmt(v[i]) if i < v.shape[0] else "–")
    return cols, rows


def _fmt(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _profile_figure(figs: Figures, profile: dict) -> str | None:
    """Lines of any numeric series in the position profile, against position."""
    x = next((profile[k] for k in ("positions", "position", "x") if isinstance(profile.get(k), list)), None)
    traces = []
    for name, series in profile.items():
        if series is x or not isinstance(series, list) or not series:
            continue
        rows = series if isinstance(series[0], list) else [series]
        for j, row in enumerate(rows[:24]):
            if not all(isinstance(v, (int, float)) or v is None for v in row):
                continue
            row = [None if v is None or v < 0 else v for v in row]  # negative = "unseen" (diagnostics' -1)
            label = name if len(rows) == 1 else f"{name} L{j}"
            traces.append({"type": "scatter", "mode": "lines", "name": plot_text(label), "y": row,
                           "x": x if x and len(x) == len(row) else list(range(len(row))),
                           "line": {"color": PALETTE[len(traces) % len(PALETTE)]}})
    if not traces:
        return None
    return figs.add(traces, layout(title={"text": "position profile"}, xaxis={"title": {"text": "position"}},
                                   yaxis={"title": {"text": "attention mass"}}))


def _pattern_stack(figs: Figures, case_id: str, layers: dict[int, np.ndarray], tokens: list[str]) -> dict:
    """One case's patterns as a heat map with layer/head selectors (head "mean" = head average)."""
    order = sorted(layers)
    n_heads = max(layers[i].shape[0] for i in order)
    frames, titles, spans = [], [], None
    for i in order:
        pat = np.nan_to_num(layers[i].astype(np.float32))  # [H, T, T]
        if pat.shape[0] < n_heads:  # a layer with fewer heads is padded with empty maps
            pat = np.concatenate([pat, np.zeros((n_heads - pat.shape[0],) + pat.shape[1:], np.float32)])
        pat = np.concatenate([pat, pat.mean(axis=0, keepdims=True)], axis=0)  # [H+1, T, T]
        pooled, spans = pool_square(pat, MAX_TOKENS)  # [H+1, n, n]
        frames += encode_u8_sqrt(pooled)
        for h in range(n_heads + 1):
            titles.append(f"{plot_text(case_id)}: layer {i}, {'mean of heads' if h == n_heads else f'head {h}'}")
    n = len(spans)
    labels = [plot_text("".join(tokens[a:b]) if b - a == 1 else f"{a}–{b - 1}", 14) if tokens else str(a)
              for a, b in spans]
    axis = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": labels, "tickfont": {"size": 9}}
    base = {"x": list(range(n)), "y": list(range(n)), "colorscale": BLUES, "zmin": 0, "zmax": 1,
            "colorbar": {"title": {"text": "p"}},
            "hovertemplate": "query %{y} → key %{x}<br>p = %{z:.4f}<extra></extra>"}
    lay = layout(title={"text": titles[0]}, height=520, xaxis=axis | {"title": {"text": "key"}, "side": "bottom"},
                 yaxis=axis | {"title": {"text": "query"}, "autorange": "reversed"})
    lay["margin"] = {"l": 90, "r": 20, "t": 50, "b": 90}
    dims = [("layer", [f"L{i}" for i in order]), ("head", [f"H{h}" for h in range(n_heads)] + ["mean"])]
    fid = figs.add_stack(base, dims, frames, "u8sqrt", (n, n), titles, lay)
    return {"case_id": case_id, "fig": fid, "dims": dims, "pooled": spans[-1][1] if spans else 0, "bins": n,
            "tokens": len(tokens)}


def build(view: RunView, figs: Figures) -> dict | None:
    grids, per_layer, profile = _stats(view)
    by_case: dict[str, dict[int, str]] = {}
    for a in view.artifact_keys("attention/"):
        m = PATTERN_KEY.match(a["key"])
        if m and a["kind"] == "array":
            by_case.setdefault(m["case"], {})[int(m["layer"])] = a["key"]
    if not grids and not per_layer and not profile and not by_case:
        return None
    ctx: dict = {"stat_fig": None, "table": None, "profile_fig": None, "cases": [], "n_cases": len(by_case)}
    if grids:
        names = list(grids)
        shape = max(g.shape for g in grids.values())
        frames = [np.pad(grids[n], [(0, shape[0] - grids[n].shape[0]), (0, shape[1] - grids[n].shape[1])],
                         constant_values=np.nan).round(4).tolist() for n in names]
        base = {"x": [f"H{h}" for h in range(shape[1])], "y": [f"L{i}" for i in range(shape[0])],
                "colorscale": "Viridis", "hovertemplate": "%{y} %{x}: %{z:.3f}<extra></extra>"}
        titles = [STAT_TITLES.get(n, n) for n in names]
        lay = layout(title={"text": titles[0]}, height=max(300, 40 + 22 * shape[0]),
                     yaxis={"autorange": "reversed", "title": {"text": "layer"}}, xaxis={"title": {"text": "head"}})
        ctx["stat_fig"] = figs.add_stack(base, [("statistic", names)], frames, "raw", shape, titles, lay)
        ctx["stat_dims"] = [("statistic", names)]
    if grids or per_layer:
        ctx["table"] = _layer_table(grids, per_layer)
    if isinstance(profile, dict):
        ctx["profile_fig"] = _profile_figure(figs, profile)
    chosen = list(by_case)[:MAX_CASES]
    keys = [k for c in chosen for k in by_case[c].values()]
    payloads = view.artifacts(keys)
    meta = {a["key"]: a["meta"] for a in view.artifact_keys("attention/")}
    for c in chosen:
        layers = {i: np.asarray(payloads[k]) for i, k in by_case[c].items() if k in payloads}
        tokens = next((meta[k].get("tokens") for k in by_case[c].values() if meta.get(k, {}).get("tokens")), []) or []
        if layers:
            ctx["cases"].append(_pattern_stack(figs, c, layers, [str(t) for t in tokens]))
    f = view.findings
    ctx["findings"] = [] if f.empty else f.loc[f["source"].str.startswith("diagnostic"), "message"].tolist()
    return ctx


report_sections.add("attention", Section("Attention", 30, "section_attention.html.j2", build))
