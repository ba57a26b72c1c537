"""Benchmark (not a test): report build time and file size on a large synthetic run.

The run: 10,000 result rows, 24 layers x 16 heads of attention statistics, attention patterns
for 6 cases of 128 tokens (24 x 16 heads each), 50 attribution maps (+ graphs), 12 activation
maps, 2 monitor curves. Targets: build <= 10 s, file <= 20 MB.

As a reference point it also times plotly's own `write_html` of the same probe figures one file
per figure (the usual way people export Plotly), and prints ours/peer ratios from this run.

    python benchmarks/bench_report.py [--out /tmp/bench-report.html]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from faultlens.report import build_report
from faultlens.report.synthetic import SyntheticRun, write_synthetic_run
from faultlens.store import Store

BIG = SyntheticRun(n_pairs=1000, layers=24, heads=16, tokens=128, attention_cases=6, attribution_cases=50,
                   activation_cases=12, steps=5000, hostile=False)  # 1000 pairs x 5 values x 2 metrics = 10,000 rows


def peer_plotly_export(store: Store, run_id: str, out_dir: Path) -> tuple[float, int]:
    """Plotly's standard export: one write_html per probe figure, JS inlined in each."""
    import plotly.graph_objects as go

    from faultlens.report.sections.probes import per_value

    df = store.to_pandas("results", run_id)
    t0 = time.perf_counter()
    size = 0
    for probe, g in df.groupby("probe"):
        s = per_value(g)
        fig = go.Figure(go.Scatter(x=[str(v) for v in s["values"]], y=s["accuracy"], mode="lines+markers"))
        path = out_dir / f"peer-{probe}.html"
        fig.write_html(path, include_plotlyjs=True)
        size += path.stat().st_size
    return time.perf_counter() - t0, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = Store(tmp / "bench.sqlite")
        t0 = time.perf_counter()
        rid = write_synthetic_run(store, BIG, model="bench-model")
        t_fill = time.perf_counter() - t0
        n = store.count("results", rid)
        out = Path(args.out) if args.out else tmp / "report.html"
        t0 = time.perf_counter()
        build_report(store, [rid], out)
        t_build = time.perf_counter() - t0
        size = out.stat().st_size
        t_peer, peer_size = peer_plotly_export(store, rid, tmp)
        print(f"synthetic run: {n} results, {BIG.layers}x{BIG.heads} attention stats, "
              f"{BIG.attention_cases} pattern cases x {BIG.tokens} tokens, {BIG.attribution_cases} attribution maps "
              f"(store filled in {t_fill:.1f} s)")
        print(f"report build: {t_build:.2f} s (target <= 10 s)  {'OK' if t_build <= 10 else 'OVER'}")
        print(f"report size : {size / 1e6:.2f} MB (target <= 20 MB)  {'OK' if size <= 20e6 else 'OVER'}")
        print(f"peer (plotly write_html, 2 probe figures only): {t_peer:.2f} s, {peer_size / 1e6:.2f} MB")
        print(f"ours/peer: time {t_build / t_peer:.2f}x, size {size / peer_size:.2f}x "
              "(ours holds every section; the peer only the 2 accuracy plots)")


if __name__ == "__main__":
    main()
