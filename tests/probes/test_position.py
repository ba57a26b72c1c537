"""The position probe: case-set schema, single-variable pairs, known-answer statistics."""

from __future__ import annotations

import random

import pytest

from faultlens.probes.base import ProbeConfig
from faultlens.probes.position import PositionProbe
from faultlens.probes.runner import ScanConfig, run_scan
from faultlens.store import Store


@pytest.mark.parametrize("case_set", ["tiny", "general"])
def test_case_sets_are_minimal_sets_varying_only_position(case_set):
    cases = PositionProbe().cases(ProbeConfig(case_set=case_set))
    assert cases and len({c.id for c in cases}) == len(cases)
    by_pair = {}
    for c in cases:
        by_pair.setdefault(c.meta["pair"], []).append(c)
    for pair, cs in by_pair.items():
        assert len({c.value for c in cs}) == len(cs) >= 3
        assert len({(c.target, c.foil, c.variable) for c in cs}) == 1
        # Same sentences in every member, only the fact's slot differs.
        a, b = cs[0], cs[-1]
        fa = a.prompt[a.meta["key_span"][0]:a.meta["key_span"][1]]
        fb = b.prompt[b.meta["key_span"][0]:b.meta["key_span"][1]]
        assert fa.lower() == fb.lower() and a.target.strip() in fa  # only the capital letter of a sentence start differs
        rest = lambda c, f: sorted(c.prompt.replace(f, "").lower().split())
        assert rest(a, fa) == rest(b, fb)


class FakeAdapter:
    """Scripted model: recalls the fact with a probability that depends (or not) on its slot."""

    name = "fake"

    def __init__(self, planted: bool, seed: int = 0):
        self.planted, self.rng = planted, random.Random(seed)

    def score(self, prompts, conts):
        out = []
        for i in range(0, len(prompts), 2):
            prompt = prompts[i]
            fact_at = prompt.index("named") / len(prompt)  # 0 = first slot … 1 = last
            p_right = 0.35 + 0.6 * fact_at if self.planted else 0.75
            right = self.rng.random() < p_right
            out += [0.0, -1.0] if right else [-1.0, 0.0]
        return out


@pytest.mark.parametrize("planted", [True, False])
def test_known_answer_flags_planted_primacy_deficit_only(planted, tmp_path):
    store = Store(tmp_path / "s.sqlite")
    cfg = ScanConfig(model="fake", probes=("position",), features=False)
    report = run_scan(FakeAdapter(planted), store, cfg)
    a = report.analyses["position"]
    if planted:
        assert len(a.findings) == 1
        f = a.findings[0]
        assert f.category == "position bias" and f.evidence["value"] == 0 and f.evidence["acc_diff"] < 0
        assert a.summary["shape"].startswith("primacy deficit")
    else:
        assert a.findings == []
    assert store.count("findings", report.run_id) == len(a.findings)


def test_shipped_model_shows_its_primacy_deficit(stories, tmp_path):
    """Calibrated on the shipped model: a fact in the first sentence is recalled less often."""
    store = Store(tmp_path / "s.sqlite")
    report = run_scan(stories, store, ScanConfig(model="stories260k", probes=("position",), features=False))
    s = report.analyses["position"].summary
    acc = dict(zip(s["values"], s["accuracy"]))
    assert acc[0] < acc[4] and min(acc.values()) > 0.6  # it can do the task, and worst at the start
    assert [f.category for f in report.analyses["position"].findings] == ["position bias"]
