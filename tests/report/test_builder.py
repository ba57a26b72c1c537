"""The report page: sections only with data, planted numbers shown, model text escaped, offline."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from faultlens.errors import FaultlensError
from faultlens.report import Report, render
from faultlens.report.figures import pool_square, script_json
from faultlens.report.sections.probes import bootstrap_ci, flipped_pairs, per_value
from faultlens.report.synthetic import XSS_OUTPUT, XSS_PROMPT
from faultlens.report.taxonomy import family_of
from faultlens.store import Store
from faultlens.types import Result

ALL_SECTIONS = ["summary", "probes", "attention", "tokens", "activations", "monitor", "checks", "predictor"]


def figs_of(page: str) -> dict:
    blob = re.search(r'<script type="application/json" id="fl-figs"[^>]*>(.*?)</script>', page, re.S).group(1)
    return json.loads(blob)


def test_rich_run_shows_every_section(filled):
    store, ids = filled
    page = render(store, [ids["rich"]])
    for name in ALL_SECTIONS:
        assert f'id="r0-{name}"' in page, name
    assert "Nothing recorded for this run yet" not in page


def test_sections_appear_only_when_their_data_is_present(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    rid = store.create_run("m", {})
    store.add_results([Result(rid, "position", f"c{i}", "m", "position", v, "margin", 1.0 - i % 2, bool(1 - i % 2),
                              {"prompt": "p", "target": " a", "foil": " b"}) for i, v in enumerate(["x", "y"] * 3)])
    page = render(store, [rid])
    assert 'id="r0-probes"' in page
    for name in set(ALL_SECTIONS) - {"probes"}:
        assert f'id="r0-{name}"' not in page, name
    store.add_events(rid, [(s, "loss", 1.0 / (s + 1)) for s in range(10)])
    assert 'id="r0-monitor"' in render(store, [rid])


def test_empty_run_says_there_is_nothing_yet(filled):
    store, ids = filled
    page = render(store, [ids["empty"]])
    assert "Nothing recorded for this run yet" in page
    assert not any(f'id="r0-{n}"' in page for n in ALL_SECTIONS)


def test_unknown_run_id_is_a_clear_error(filled):
    store, _ = filled
    with pytest.raises(FaultlensError, match="Unknown run id 'nope'"):
        render(store, ["rich", "nope"])


def test_accuracy_per_value_matches_planted_counts():
    # value a: 18 of 20 pass; value b: 6 of 20 pass -> accuracy 0.9 and 0.3 exactly.
    rows = [{"value": v, "metric": "correct", "passed": i < k, "score": float(i < k)}
            for v, k in (("a", 18), ("b", 6)) for i in range(20)]
    import pandas as pd

    stats = per_value(pd.DataFrame(rows))
    assert stats["values"] == ["a", "b"]
    assert stats["accuracy"] == pytest.approx([0.9, 0.3])
    for p, lo, hi in zip(stats["accuracy"], stats["ci_low"], stats["ci_high"]):
        half = 1.96 * np.sqrt(p * (1 - p) / 20)  # normal-approximation half width for comparison
        assert lo < p < hi and abs((hi - lo) / 2 - half) < 0.05


def test_bootstrap_ci_degenerate_cases():
    assert np.isnan(bootstrap_ci(np.array([]))[0])
    assert bootstrap_ci(np.ones(5)) == (1.0, 1.0)


def test_planted_position_bias_is_what_the_page_plots(filled):
    store, ids = filled
    page = render(store, [ids["rich"]])
    figs = figs_of(page)
    acc = next(f for f in figs.values() if f["layout"].get("title", {}).get("text", "").startswith("position: accuracy"))
    y = dict(zip(acc["data"][0]["x"], acc["data"][0]["y"]))
    assert y["middle"] < 0.5 < min(y["start"], y["end"])  # planted 0.3 vs 0.9 / 0.85, 40 pairs each


def test_stored_probe_summary_wins_over_recomputation(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    rid = store.create_run("m", {})
    store.add_results([Result(rid, "neg", f"c{i}", "m", "negated", v, "correct", 1.0, True, {})
                       for i, v in enumerate([False, True])])
    store.put_artifact(rid, "probe/neg/summary", {"values": [False, True], "accuracy": [0.777, 0.123],
                                                  "ci_low": [0.7, 0.05], "ci_high": [0.85, 0.2], "margin": [1.5, -0.4],
                                                  "test": {"p_value": 0.0042}})
    page = render(store, [rid])
    assert "0.123" in page and "0.777" in page and "stored summary" in page and "p_value = 0.0042" in page


def test_flipped_pairs_are_found_and_non_flips_are_not():
    import pandas as pd

    def row(pair, value, passed, score):
        return {"case_id": f"{pair}-{value}", "value": value, "metric": "margin", "passed": passed, "score": score,
                "detail": {"pair": pair, "prompt": f"prompt {pair} {value}", "target": " a", "foil": " b"}}

    df = pd.DataFrame([row("p1", "start", True, 1.0), row("p1", "middle", False, -2.0),
                       row("p2", "start", True, 1.0), row("p2", "middle", True, 0.5)])
    flips, are_pairs = flipped_pairs(df)
    assert are_pairs and [f["pair"] for f in flips] == ["p1"]
    assert {m["prompt"] for m in flips[0]["members"]} == {"prompt p1 start", "prompt p1 middle"}


def test_model_text_is_escaped_everywhere(filled):
    store, ids = filled
    page = render(store, [ids["rich"]])
    assert XSS_PROMPT not in page and XSS_OUTPUT not in page
    assert "window.__xss=1" in page  # it is there, as text ...
    assert "&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;" in page  # ... escaped for HTML
    # Exactly our three script elements (figure data, plotly.js, our JS); none from model text.
    assert len(re.findall(r"<script\b", page)) == 3
    assert "<img" not in page
    blob = re.search(r'id="fl-figs"[^>]*>(.*?)</script>', page, re.S).group(1)
    assert "<" not in blob and ">" not in blob


def test_page_is_self_contained_and_forbids_network(filled):
    store, ids = filled
    page = render(store, [ids["rich"], ids["other"]])
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=["\']?(https?:)?//', page)
    assert "default-src 'none'" in page and "connect-src 'none'" in page
    assert "Plotly" in page and len(page) < 20e6


def test_script_json_round_trips_hostile_strings():
    obj = {"s": "</script><script>alert(1)</script> & \u2028", "x": [1.5, float("nan"), np.float32(2)]}
    text = script_json(obj)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"s": obj["s"], "x": [1.5, None, 2.0]}


def test_pool_square_keeps_attention_mass():
    rng = np.random.default_rng(0)
    p = rng.random((3, 200, 200)) * np.tril(np.ones((200, 200)))
    p /= p.sum(-1, keepdims=True)
    pooled, spans = pool_square(p, 48)
    assert pooled.shape == (3, 48, 48) and spans[0][0] == 0 and spans[-1][1] == 200
    np.testing.assert_allclose(pooled.sum(-1), 1.0, atol=1e-9)  # each pooled query row still sums to 1


def test_attention_stats_from_run_features(filled):
    store, ids = filled
    page = render(store, [ids["other"]])  # this run stores stats as __run__ features, not a summary
    figs = figs_of(page)
    stat = next(f for f in figs.values() if f.get("stack", {}).get("dims", [{}])[0].get("name") == "statistic")
    names = stat["stack"]["dims"][0]["labels"]
    assert {"entropy", "sink_mass"} <= set(names)
    sink = np.array(stat["stack"]["frames"][names.index("sink_mass")], dtype=float)
    assert np.unravel_index(np.nanargmax(sink), sink.shape) == (1, 2)  # the planted sink head


def test_findings_grouped_by_family(filled):
    store, ids = filled
    page = render(store, [ids["rich"]])
    summary = page[page.index('id="r0-summary"'):page.index('id="r0-probes"')]
    for fam in ("attention faults", "learning biases", "reasoning faults", "training faults", "implementation faults"):
        assert fam in summary
    assert family_of("Attention Masking", "check:causality") == "implementation faults"
    assert family_of("something new", "monitor:x") == "training faults"
    assert 'href="#r0-probe-position"' in summary and 'id="r0-probe-position"' in page


def test_comparison_of_two_runs_plots_failure_rate_against_size(filled):
    store, ids = filled
    page = render(store, [ids["rich"], ids["other"]])
    assert 'data-key="compare"' in page and "failure rate against model size" in page
    figs = figs_of(page)
    size_fig = next(f for f in figs.values() if f["layout"].get("title", {}).get("text") == "failure rate against model size")
    assert size_fig["layout"]["xaxis"]["type"] == "log"
    assert sorted(size_fig["data"][0]["x"]) == [260_000, 15_000_000]


def test_notebook_repr_is_a_sandboxed_iframe(filled):
    store, ids = filled
    html = Report(store, ids["rich"])._repr_html_()
    assert html.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts' in html
    assert "<script" not in html  # the whole page is inside an escaped attribute
