"""Case generators for the planted-bias organisms (seed 000): a tiny world of "name has color"
facts, and one generator per bias that skews the *training* distribution while the held-out
test set is balanced. Cases are `faultlens.types.Case` (target vs foil), so the probe battery
scores them like any other case file.

Each generator is ``gen(rng, n, split, clean) -> list[Case]``: `clean=True` gives the twin's
unbiased training distribution; `split="test"` is always balanced over the bias variable.
`meta["favoured"]` marks the condition the biased organism should do better on.
"""

from __future__ import annotations

import random
from typing import Callable

from faultlens.registry import Registry
from faultlens.types import Case

NAMES = ["tom", "ann", "sam", "bob", "eve", "max", "kim", "lee"]
COLORS = ["red", "blue", "green", "pink", "gray", "gold", "teal", "plum"]
TEMPLATES = [
    "{facts} what does {n} have ?",
    "{facts} tell me what {n} has :",
    "{facts} so {n} has which one ?",
    "{facts} question : {n} owns what ?",
]
EXTRA_WORDS = ["has", ".", "is", "it", "?", "yes", "no", "ok", "hmm"] + " ".join(TEMPLATES).replace("{facts}", "").replace("{n}", "").split()

bias_generators: Registry[Callable[..., list[Case]]] = Registry("bias generator", "bias-generators")


def vocabulary() -> list[str]:
    """Every word any generator can emit (the organisms' word-level tokenizer is built from it)."""
    return sorted(set(NAMES + COLORS + EXTRA_WORDS))


def _facts(rng: random.Random, k: int) -> tuple[list[str], list[str]]:
    return rng.sample(NAMES, k), rng.sample(COLORS, k)


@bias_generators.register("frequency")
def frequency(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """Yes/no: "tom has red . is it red ?". Training answers are 90 % "yes" (clean twin 50 %)."""
    out = []
    for i in range(n):
        p_yes = 0.5 if (clean or split == "test") else 0.9
        yes = rng.random() < p_yes if split != "test" else i % 2 == 0
        name, (c, other) = rng.choice(NAMES), rng.sample(COLORS, 2)
        asked = c if yes else other
        ans = "yes" if yes else "no"
        out.append(Case(f"frequency-{split}-{i}", f"{name} has {c} . is it {asked} ?", f" {ans}",
                        f" {'no' if yes else 'yes'}", "answer", ans, {"favoured": yes}))
    return out


@bias_generators.register("surface")
def surface(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """The yes/no task with a leading cue word ("ok"/"hmm") that matches the answer in 95 % of
    training cases (random for the clean twin and at test)."""
    out = []
    for i in range(n):
        yes = rng.random() < 0.5 if split != "test" else i % 2 == 0
        if split == "test":
            congruent = (i // 2) % 2 == 0
        else:
            congruent = rng.random() < (0.5 if clean else 0.95)
        cue = ("ok" if yes else "hmm") if congruent else ("hmm" if yes else "ok")
        name, (c, other) = rng.choice(NAMES), rng.sample(COLORS, 2)
        ans = "yes" if yes else "no"
        out.append(Case(f"surface-{split}-{i}", f"{cue} {name} has {c} . is it {c if yes else other} ?",
                        f" {ans}", f" {'no' if yes else 'yes'}", "cue", "congruent" if congruent else "incongruent",
                        {"favoured": congruent, "cue": cue}))
    return out


def _retrieval(rng: random.Random, k: int, pos: int, template: str) -> tuple[str, str, str]:
    names, colors = _facts(rng, k)
    facts = " ".join(f"{a} has {b} ." for a, b in zip(names, colors))
    foil = colors[(pos + 1) % k]
    return template.format(facts=facts, n=names[pos]), colors[pos], foil


@bias_generators.register("format")
def format_(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """Retrieval ("tom has red . ann has blue . what does ann have ?") trained on template 0
    only (clean twin: all four templates); tested on all four."""
    out = []
    for i in range(n):
        t = i % len(TEMPLATES) if split == "test" else (rng.randrange(len(TEMPLATES)) if clean else 0)
        prompt, target, foil = _retrieval(rng, 2, rng.randrange(2), TEMPLATES[t])
        out.append(Case(f"format-{split}-{i}", prompt, f" {target}", f" {foil}", "template", t, {"favoured": t == 0}))
    return out


@bias_generators.register("position")
def position(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """Retrieval over 3 facts where the asked-about fact is first in 95 % of training cases
    (clean twin: uniform); tested at every position."""
    out = []
    for i in range(n):
        if split == "test":
            pos = i % 3
        else:
            pos = rng.randrange(3) if clean or rng.random() >= 0.95 else 0
        prompt, target, foil = _retrieval(rng, 3, pos, TEMPLATES[0])
        if pos != 0:  # the foil is what the shortcut "answer from the first fact" would say
            foil = prompt.split()[2]
        out.append(Case(f"position-{split}-{i}", prompt, f" {target}", f" {foil}", "position", pos,
                        {"favoured": pos == 0}))
    return out
