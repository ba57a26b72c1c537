"""Judges read generated text: target / foil / neither, regex, abstention, constraints."""

from __future__ import annotations

import pytest

from faultlens.errors import FaultlensError
from faultlens.probes.judges import judges
from faultlens.types import Case

C = Case("x/1/a", "Q?", " Canberra", " Sydney")


@pytest.mark.parametrize("text,expected", [
    ("Canberra.", 1.0), ("It is Sydney, not Canberra", -1.0), ("canberra!", 1.0), ("Melbourne", 0.0),
    ("Canberras", 0.0), ("The capital is Canberra; Sydney is bigger.", 1.0),
])
def test_choice(text, expected):
    assert judges.get("choice")(text, C) == expected


def test_exact_and_regex():
    assert judges.get("exact")(" canberra\nmore", C) == 1.0
    assert judges.get("exact")("Canberra is right", C) == 0.0
    c = Case("x/1/b", "Q?", " B", " A", meta={"target_regex": r"^\W*B\b", "foil_regex": r"^\W*[A-D]\b"})
    assert judges.get("regex")("(B) Mars", c) == 1.0
    assert judges.get("regex")("A. Venus", c) == -1.0
    assert judges.get("regex")("I think it is B", c) == 0.0
    with pytest.raises(FaultlensError, match="target_regex"):
        judges.get("regex")("B", C)


def test_abstain():
    c = Case("h/1/f", "Who wrote X?", " I don't know.", " Leo Tolstoy")
    assert judges.get("abstain")("I don't know of such a novel.", c) == 1.0
    assert judges.get("abstain")("That book does not exist as far as I can tell.", c) == 1.0
    assert judges.get("abstain")("It was written by Leo Tolstoy in 1870.", c) == -1.0
    assert judges.get("abstain")("It was written by a Russian author.", c) == 0.0


@pytest.mark.parametrize("spec,text,ok", [
    ({"name": "uppercase"}, "CANBERRA", True), ({"name": "uppercase"}, "Canberra", False),
    ({"name": "uppercase"}, "42", False), ({"name": "starts_with", "arg": "["}, " [Ottawa]", True),
    ({"name": "starts_with", "arg": "["}, "Ottawa", False), ({"name": "max_words", "arg": 2}, "a b c", False),
    ({"name": "no_word", "arg": "very"}, "It is every day", True), ({"name": "ends_with", "arg": "OVER"}, "Done. OVER.", True),
])
def test_constraints(spec, text, ok):
    c = Case("i/1/t0", "p", " X", " x", meta={"constraint": spec})
    assert judges.get("constraint")(text, c) == (1.0 if ok else -1.0)


def test_constraint_needs_spec():
    with pytest.raises(FaultlensError, match="meta.constraint"):
        judges.get("constraint")("x", C)
