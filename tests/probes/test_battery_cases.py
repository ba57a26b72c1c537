"""Case-set schema checks for every battery family, and "minimal sets differ in one field only"."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from faultlens.probes import load_all, probes
from faultlens.probes.base import pair_of
from faultlens.probes.cases import load_jsonl, shipped_case_file
from faultlens.probes.judges import judges

load_all()
FAMILIES = ["attention_drift", "frequency", "surface", "sycophancy", "option_order", "format", "broken_chains",
            "forgotten_conclusions", "self_consistency", "hallucination", "instruction_drift"]

# What the variable may change inside a minimal set besides `value` (and the id's last part).
# "prompt": the prompt text; "answers": target/foil; names are checked more tightly below.
MAY_DIFFER = {
    "attention_drift": {"prompt"}, "forgotten_conclusions": {"prompt"}, "instruction_drift": {"prompt"},
    "surface": {"prompt"}, "sycophancy": {"prompt"}, "format": {"prompt"}, "self_consistency": {"prompt"},
    "option_order": {"prompt", "answers"},  # general set: the gold label moves with the gold option
    "frequency": {"prompt", "answers"},  # target and foil swap
    "hallucination": {"prompt", "answers"},  # real: the fact; fictitious: an abstention
    "broken_chains": {"prompt", "answers"},  # step vs conclusion question on a shared context
}


def test_every_family_is_registered():
    assert set(FAMILIES) <= set(probes.names())


@pytest.mark.parametrize("case_set", ["tiny", "general"])
@pytest.mark.parametrize("family", FAMILIES)
def test_case_set_schema(family, case_set):
    probe = probes.get(family)
    cases = load_jsonl(shipped_case_file(family, case_set))
    sets = defaultdict(list)
    for c in cases:
        assert c.prompt.strip() and c.target and c.foil, c.id
        assert c.target != c.foil, c.id
        assert c.variable == probe.variable, c.id
        assert c.id.startswith(family), c.id
        if probe.value_order is not None:
            assert c.value in probe.value_order, c.id
        if c.meta.get("judge"):
            assert c.meta["judge"] in judges, c.id
        span = c.meta.get("key_span")
        if span:
            assert 0 <= span[0] < span[1] <= len(c.prompt), c.id
        sets[pair_of(c)].append(c)
    values = {tuple(sorted(map(str, (c.value for c in cs)))) for cs in sets.values()}
    assert len(values) == 1, "every minimal set has the same values"
    assert len(next(iter(values))) >= 2 and len(sets) >= 20


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _common_suffix(a: str, b: str) -> int:
    return _common_prefix(a[::-1], b[::-1])


def _regenerated_matches_shipped(family, case_set):
    fresh = probes.get(family).generate(case_set, seed=0)
    shipped = load_jsonl(shipped_case_file(family, case_set))
    return [c.to_json() for c in fresh] == [c.to_json() for c in shipped]


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_data_is_what_the_seeded_generator_makes(family):
    assert _regenerated_matches_shipped(family, "general")


@pytest.mark.parametrize("case_set", ["tiny", "general"])
@pytest.mark.parametrize("family", FAMILIES)
def test_minimal_sets_differ_in_one_field(family, case_set):
    cases = load_jsonl(shipped_case_file(family, case_set))
    sets = defaultdict(list)
    for c in cases:
        sets[pair_of(c)].append(c)
    allowed = MAY_DIFFER[family]
    for pid, cs in sets.items():
        assert len({str(c.value) for c in cs}) == len(cs), f"{pid}: repeated value"
        assert len({c.variable for c in cs}) == 1
        if "answers" not in allowed:
            assert len({(c.target, c.foil) for c in cs}) == 1, f"{pid}: answers differ"
        else:
            names = {c.target for c in cs} | {c.foil for c in cs}
            if family == "frequency":  # the same two names, swapped
                assert len(names) == 2 and cs[0].target == cs[1].foil, pid
        if family in ("attention_drift", "forgotten_conclusions", "instruction_drift"):
            # only distractor text is inserted: every prompt is the shortest one with one block added
            base = min(cs, key=lambda c: len(c.prompt)).prompt
            for c in cs:
                assert _common_prefix(base, c.prompt) + _common_suffix(base, c.prompt) >= len(base), c.id
        by = {str(c.value): c for c in cs}
        if family == "surface" and case_set == "tiny":  # the cue is the one inserted word
            assert by["present"].prompt.replace(f"named {by['present'].foil.strip()}", by["present"].foil.strip()) == by["absent"].prompt
        if family == "sycophancy" and case_set == "tiny":  # only the friend's remark changes
            a, w = by["none"], by["wrong_opinion"]
            assert w.prompt.replace(w.meta["opinion_span"], a.meta["opinion_span"]) == a.prompt
        if family == "option_order" and case_set == "tiny":  # the same words, reordered
            assert sorted(re.findall(r"\w+", by["first"].prompt)) == sorted(re.findall(r"\w+", by["last"].prompt))
            assert by["first"].prompt != by["last"].prompt
        if family == "option_order" and case_set == "general":  # the same options, gold moved
            assert len({tuple(sorted(c.meta["options"])) for c in cs}) == 1
        if family == "broken_chains":
            assert len({c.meta["context"] for c in cs}) == 1 and all(c.prompt.startswith(c.meta["context"]) for c in cs)


def test_tiny_pairs_differ_in_first_token():
    from faultlens.probes.attention_drift import first_token

    for family in ("attention_drift", "frequency", "surface", "sycophancy", "option_order", "format", "self_consistency"):
        for c in load_jsonl(shipped_case_file(family, "tiny")):
            assert first_token(c.target.strip()) != first_token(c.foil.strip()), c.id
