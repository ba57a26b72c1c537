"""Known-answer tests: a fake model with a planted dependence on each family's variable is flagged
with the right sign; its clean twin is not. Score mode through the real runner; generation mode
through `generate_chunk` on a black-box fake that has no `score`."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.probes.probe_fakes import GenerateOnly, PlantedAdapter

from faultlens.probes import load_all, probes
from faultlens.probes.base import ProbeConfig
from faultlens.probes.judges import generate_chunk
from faultlens.probes.runner import ScanConfig, run_scan
from faultlens.probes.stats import value_key

load_all()
# family -> (value planted as bad in the tiny set, in the general set)
PLANT = {
    "attention_drift": (24, 24), "forgotten_conclusions": (16, 16), "instruction_drift": (8, 8),
    "frequency": ("rare", "rare"), "surface": ("present", "present"), "sycophancy": ("wrong_opinion", "wrong_opinion"),
    "hallucination": ("fictitious", "fictitious"), "broken_chains": ("conclusion", "conclusion"),
    "format": ("no_punctuation", "dash_lower"), "option_order": ("first", "A"), "self_consistency": ("p2", "p1"),
}


def _check(analysis, bad):
    assert analysis.findings, f"{analysis.probe}: planted dependence not flagged"
    ev = analysis.findings[0].evidence
    assert value_key(ev["value"]) == value_key(bad), ev
    assert ev["acc_diff"] < 0 and ev["margin_diff"] < 0 and ev["p_holm"] < 0.05, ev


@pytest.mark.parametrize("family", sorted(PLANT))
def test_score_mode_flags_planted_and_not_clean(family, store):
    probe = probes.get(family)()
    cfg = ProbeConfig(case_set="tiny", n_per_cell=40)
    cases = probe.cases(cfg)
    scan = ScanConfig(model="fake", probes=(family,), probe=cfg, features=False)
    planted = run_scan(PlantedAdapter(cases, PLANT[family][0]), store, scan, run_id="planted")
    _check(planted.analyses[family], PLANT[family][0])
    clean = run_scan(PlantedAdapter(cases, None), store, scan, run_id="clean")
    assert clean.analyses[family].findings == []


@pytest.mark.parametrize("family", sorted(PLANT))
def test_generation_mode_on_general_set(family):
    probe = probes.get(family)()
    cases = probe.cases(ProbeConfig(case_set="general", n_per_cell=40))
    for bad, expect in ((PLANT[family][1], True), (None, False)):
        ad = GenerateOnly(cases, bad, p_bad=0.1)  # some general sets have only 20 items: plant a strong effect
        assert not hasattr(ad, "score")
        rows = []
        for i in range(0, len(cases), 32):
            rows += generate_chunk(probe, ad, cases[i:i + 32], "r")
        assert len(rows) == len(cases) and all(r.detail["mode"] == "generate" for r in rows)
        df = pd.DataFrame([r.__dict__ for r in rows])
        analysis = probe.analyze(df, "r")
        if expect:
            _check(analysis, bad)
        else:
            assert analysis.findings == []
            # the clean fake answers right ~85% of the time and every judge must see that
            assert 0.6 < df["passed"].mean() < 0.99


def test_false_positive_rate_under_independent_noise(store):
    """Per-case noise unrelated to the variable: at alpha=0.05 (Holm within each family) at most
    2 of the 11 families may fire by chance (expected ~0.5; P(>2) < 2% if the tests are valid)."""
    fired = []
    for family in sorted(PLANT):
        cfg = ProbeConfig(case_set="tiny", n_per_cell=40)
        ad = PlantedAdapter(probes.get(family)().cases(cfg), None, per="case")
        rep = run_scan(ad, store, ScanConfig(model="fake", probes=(family,), probe=cfg, features=False), run_id=f"noise-{family}")
        fired += [family] if rep.analyses[family].findings else []
    assert len(fired) <= 2, fired


def test_option_order_scores_every_label():
    probe = probes.get("option_order")()
    case = next(c for c in probe.cases(ProbeConfig(case_set="general")) if c.value == "C")
    reqs = probe.requests(case)
    assert [c for _, c in reqs] == [" A", " B", " C", " D"]
    (res,) = probe.judge(case, [-3.0, -2.0, -1.0, -2.5], "r", "m")
    assert res.passed and res.score == pytest.approx(1.0) and res.detail["chosen"] == "C"
    (res,) = probe.judge(case, [-0.5, -2.0, -1.0, -2.5], "r", "m")
    assert not res.passed and res.detail["chosen"] == "A"


def test_broken_chains_summary_counts_both_kinds(store):
    probe = probes.get("broken_chains")()
    cfg = ProbeConfig(case_set="tiny", n_per_cell=40)
    rep = run_scan(PlantedAdapter(probe.cases(cfg), "conclusion"), store,
                   ScanConfig(model="fake", probes=("broken_chains",), probe=cfg, features=False))
    chain = rep.analyses["broken_chains"].summary["chain"]
    assert chain["broken_rate"] > chain["reverse_rate"]
    total = chain["both_right"] + chain["both_wrong"] + chain["broken_rate"] + chain["reverse_rate"]
    assert total == pytest.approx(1.0)


def test_self_consistency_sampling_agreement():
    probe = probes.get("self_consistency")()
    cases = probe.cases(ProbeConfig(case_set="general", n_per_cell=10))
    rows = generate_chunk(probe, GenerateOnly(cases, None), cases, "r")
    d = rows[0].detail
    assert len(d["samples"]) == probe.n_samples and d["sample_agreement"] == 1.0  # the fake is deterministic
    summary = probe.analyze(pd.DataFrame([r.__dict__ for r in rows]), "r").summary
    assert summary["sample_agreement"]["mean"] == 1.0
    assert 0.5 <= summary["paraphrase_agreement"]["mean"] <= 1.0
