"""Plotly figures as plain dicts, collected per page and embedded once as escaped JSON.

What lives here: the `Figures` sink that hands out figure ids, the heat-map "stack" (many
frames behind one selector, quantised to bytes so big attention maps stay small), and the
escaping that makes model text safe inside `<script>` and inside Plotly's pseudo-HTML labels.
What does not: any store access (see `view.py`) or page layout (see `templates/`).

Figures are plain dicts rather than `plotly.graph_objects` because validation costs seconds on
a 10,000-result run and buys nothing: the browser's plotly.js is the one that draws them.
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any

import numpy as np

# Colours used by every section so a run reads consistently.
PALETTE = ["#3b6ea8", "#d9534f", "#5cb85c", "#f0ad4e", "#8e6bb8", "#2bb0a8", "#b8860b", "#777777"]
# Sequential scales that start white, so "nothing" reads as background.
BLUES = [[0, "#f7fbff"], [0.15, "#deebf7"], [0.35, "#9ecae1"], [0.6, "#4292c6"], [0.8, "#2171b5"], [1, "#08306b"]]
BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#fafafa",
    "height": 340,
}


def plot_text(text: Any, limit: int = 60) -> str:
    """Model/user text made safe and readable for Plotly labels.

    Plotly renders a subset of HTML in titles, ticks and hovers (`<b>`, `<br>`, entities), so
    raw text such as `<script>` must be entity-escaped; plotly.js decodes the entities back
    into literal characters when it draws. Newlines and tabs are made visible.
    """
    s = str(text).replace("\n", "\\n").replace("\t", "\\t")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=False)


def clean(obj: Any) -> Any:
    """Make `obj` strict-JSON-able: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if obj and all(type(v) is float for v in obj):  # fast path: the long numeric series
            return [v if math.isfinite(v) else None for v in obj]
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            return clean(np.where(np.isfinite(obj), obj, np.nan).astype(object).tolist()) if not np.isfinite(obj).all() \
                else obj.tolist()
        return obj.tolist()
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def script_json(obj: Any) -> str:
    """JSON that is safe to place inside a `<script>` element.

    `<`, `>` and `&` become `\\u003c`-style escapes so no string can close the element
    (`</script>`) or open an HTML comment; U+2028/2029 are escaped for old JS parsers. The
    result still parses with `JSON.parse` to the same value.
    """
    try:  # fast path: already strict JSON (most figures); clean() walks Python objects, slowly
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=_np_default)
    except ValueError:
        text = json.dumps(clean(obj), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _np_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def layout(**overrides: Any) -> dict:
    """The shared base layout with `overrides` merged one level deep."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE_LAYOUT.items()}
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = out[k] | v
        else:
            out[k] = v
    return out


def encode_u8_sqrt(z: np.ndarray) -> list[str]:
    """Quantise values in [0, 1] to one byte each on a square-root scale, base64 per frame.

    `z` is [F, rows, cols] (F frames). A square-root scale keeps small attention weights
    visible (1/255² ≈ 1.5e-5 is the smallest non-zero step) at 1 byte per cell instead of ~8
    characters of JSON. The page decodes `p = (b / 255)²`. NaN becomes 0.
    """
    z = np.asarray(z, dtype=np.float32)
    q = np.rint(np.sqrt(np.clip(np.where(np.isnan(z), 0.0, z), 0.0, 1.0)) * 255.0).astype(np.uint8)  # [F, r, c]
    return [base64.b64encode(frame.tobytes()).decode("ascii") for frame in q]


def pool_square(pattern: np.ndarray, max_size: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Block-average the last two axes of `pattern` [..., T, T] down to at most `max_size` bins.

    Averaging (not striding) keeps every row's attention mass: a pooled row is the mean of
    the rows it covers, pooled over the key bins it spans, so rows still sum to ~1 per bin
    group. Returns the pooled array [..., n, n] and the (start, end) token span of each bin.
    """
    t = pattern.shape[-1]
    if t <= max_size:
        return pattern, [(i, i + 1) for i in range(t)]
    edges = np.linspace(0, t, max_size + 1).round().astype(int)  # [n+1]
    spans = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    # Pooling as two small matrix products (BLAS), far faster than reduceat on a middle axis.
    member = np.zeros((max_size, t), dtype=pattern.dtype)  # [n, T]: bin i covers tokens a..b-1
    for i, (a, b) in enumerate(spans):
        member[i, a:b] = 1.0
    rows_mean = member / member.sum(axis=1, keepdims=True)  # [n, T]
    pooled = rows_mean @ pattern @ member.T  # [n, T] @ [..., T, T] @ [T, n] -> [..., n, n]
    return pooled, spans


class Figures:
    """Collects the figures of one page; `add` returns the id a template puts on a div."""

    def __init__(self, prefix: str = "fig") -> None:
        self.prefix = prefix
        self.specs: dict[str, dict] = {}

    def add(self, data: list[dict], lay: dict | None = None, **extra: Any) -> str:
        """Register a figure (Plotly `data` traces and `layout`); returns its element id."""
        fid = f"{self.prefix}-{len(self.specs)}"
        self.specs[fid] = {"data": data, "layout": lay or layout()} | extra
        return fid

    def add_stack(self, base: dict, dims: list[tuple[str, list[str]]], frames: list[Any],
                  encoding: str, shape: tuple[int, int], titles: list[str] | None = None,
                  lay: dict | None = None) -> str:
        """Register a heat map whose z is swapped by selectors, one per dimension.

        Args:
            base: the heatmap trace (x, y, colorscale...) without z.
            dims: [(name, labels)] — frames are laid out row-major over these dimensions.
            frames: per frame either a base64 u8-sqrt string (`encoding="u8sqrt"`) or a
                nested list of floats (`encoding="raw"`).
            shape: (rows, cols) of each frame.
            titles: optional per-frame figure title.
        """
        n = int(np.prod([len(labels) for _, labels in dims]))
        if len(frames) != n:
            raise ValueError(f"stack has {len(frames)} frames for dims of size {n}")
        first = _decode_first(frames[0], encoding, shape)
        trace = dict(base, type="heatmap", z=first)
        stack = {"dims": [{"name": d, "labels": labels} for d, labels in dims], "frames": frames,
                 "encoding": encoding, "rows": shape[0], "cols": shape[1], "titles": titles or []}
        fid = self.add([trace], lay, stack=stack)
        return fid

    def to_json(self) -> str:
        # One figure at a time, so a NaN in one figure does not send all of them down the slow path.
        parts = [f"{script_json(fid)}:{script_json(spec)}" for fid, spec in self.specs.items()]
        return "{" + ",".join(parts) + "}"


def _decode_first(frame: Any, encoding: str, shape: tuple[int, int]) -> list:
    """The first frame as a nested list, so the figure draws before any selector moves."""
    if encoding == "raw":
        return frame
    q = np.frombuffer(base64.b64decode(frame), dtype=np.uint8).astype(np.float64)
    return ((q / 255.0) ** 2).reshape(shape).round(5).tolist()
