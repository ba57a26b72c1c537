"""Case generators for the planted-bias organisms (seed 000): a tiny world of "name has color"
facts, and one generator per bias that skews the *training* distribution while the held-out
test set is balanced. Cases are `faultlens.types.Case` (target vs foil), so the probe battery
scores them like any other case file.

Each generator is ``gen(rng, n, split, clean) -> list[Case]``: `clean=True` gives the twin's
unbiased training distribution; `split="test"` yields about `n` cases in *minimal sets*: the
cases sharing `meta["pair"]` are the same item and differ only in the bias variable's `value`,
balanced over it. `meta["favoured"]` marks the condition the biased organism should do better on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

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
# Retrieval facts are compound words ("ann=blue"), so binding a name to its colour needs no
# attention hop: with the asked name as the last prompt word a single content-matching head
# answers (one layer), which a tiny model learns in a few hundred steps. The written-out form
# ("ann has blue .") needs a 2-layer induction-style circuit that did not form in 1000 steps.
POSITION_TEMPLATE = "{facts} ask {n}"
EXTRA_WORDS = ["has", ".", "is", "it", "?", "yes", "no", "ok", "hmm"] + " ".join(TEMPLATES).replace("{facts}", "").replace("{n}", "").split()

bias_generators: Registry[Callable[..., list[Case]]] = Registry("bias generator", "bias-generators")


def vocabulary() -> list[str]:
    """Every word any generator can emit (the organisms' word-level tokenizer is built from it)."""
    compounds = [f"{n}={c}" for n in NAMES for c in COLORS]
    return sorted(set(NAMES + COLORS + EXTRA_WORDS + compounds + ["ask"]))


def _yes_no(name: str, kind: str, i: int, pair: int, cue: str, person: str, color: str, other: str,
            yes: bool, variable: str, value, favoured: bool) -> Case:
    ans, wrong = ("yes", "no") if yes else ("no", "yes")
    prompt = f"{cue + ' ' if cue else ''}{person} has {color} . is it {color if yes else other} ?"
    meta = {"favoured": favoured, "pair": f"{name}-{kind}-{pair}"}
    if cue:
        meta["cue"] = cue
    return Case(f"{name}-{kind}-{i}", prompt, f" {ans}", f" {wrong}", variable, value, meta)


@bias_generators.register("frequency")
def frequency(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """Yes/no: "tom has red . is it red ?". Training answers are 90 % "yes" (clean twin 50 %);
    test pairs ask the same fact once with the right colour (yes) and once with another (no)."""
    out: list[Case] = []
    for i in range(n if split != "test" else n // 2):
        person, (c, other) = rng.choice(NAMES), rng.sample(COLORS, 2)
        if split == "test":
            for yes in (True, False):
                out.append(_yes_no("frequency", split, len(out), i, "", person, c, other, yes, "answer",
                                   "yes" if yes else "no", yes))
        else:
            yes = rng.random() < (0.5 if clean else 0.9)
            out.append(_yes_no("frequency", split, i, i, "", person, c, other, yes, "answer",
                               "yes" if yes else "no", yes))
    return out


@bias_generators.register("surface")
def surface(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """The yes/no task with a leading cue word ("ok"/"hmm") that matches the answer in 95 % of
    training cases (random for the clean twin); test pairs are one question with the
    congruent and the incongruent cue, half of the pairs with answer yes."""
    out: list[Case] = []
    for i in range(n if split != "test" else n // 2):
        person, (c, other) = rng.choice(NAMES), rng.sample(COLORS, 2)
        yes = i % 2 == 0 if split == "test" else rng.random() < 0.5
        right, wrong = ("ok", "hmm") if yes else ("hmm", "ok")
        if split == "test":
            congruents = (True, False)
        else:
            congruents = (rng.random() < (0.5 if clean else 0.95),)
        for congruent in congruents:
            out.append(_yes_no("surface", split, len(out), i, right if congruent else wrong, person, c, other, yes,
                               "cue", "congruent" if congruent else "incongruent", congruent))
    return out


def _retrieval(rng: random.Random, k: int) -> tuple[list[str], list[str], str]:
    names, colors = rng.sample(NAMES, k), rng.sample(COLORS, k)
    return names, colors, " ".join(f"{a}={b}" for a, b in zip(names, colors)) + " ."


@bias_generators.register("format")
def format_(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """Retrieval ("tom has red . ann has blue . what does ann have ?") trained on template 0
    only (clean twin: all four templates); test sets ask one question in all four templates."""
    out: list[Case] = []
    k = len(TEMPLATES)
    for i in range(n if split != "test" else max(1, n // k)):
        names, colors, facts = _retrieval(rng, 2)
        pos = rng.randrange(2)
        if split == "test":
            ts = list(range(k))
        else:
            ts = [rng.randrange(k) if clean else 0]
        for t in ts:
            out.append(Case(f"format-{split}-{len(out)}", TEMPLATES[t].format(facts=facts, n=names[pos]),
                            f" {colors[pos]}", f" {colors[1 - pos]}", "template", t,
                            {"favoured": t == 0, "pair": f"format-{split}-{i}"}))
    return out


@bias_generators.register("position")
def position(rng: random.Random, n: int, split: str, clean: bool) -> list[Case]:
    """Retrieval over 3 facts where the asked-about fact is first in 99 % of training cases
    (clean twin: uniform); a test set asks the same facts about each position. The foil of a
    later position is the first fact's colour: what the shortcut "answer from the first fact"
    would say."""
    out: list[Case] = []
    for i in range(n if split != "test" else max(1, n // 3)):
        names, colors, facts = _retrieval(rng, 3)
        if split == "test":
            ps = [0, 1, 2]
        else:
            # 99 %: the one-head retrieval is easy enough that at 95 % the rule overtakes the
            # shortcut within 200 steps (measured); at 99 % the shortcut holds at equal budget.
            ps = [rng.randrange(3) if clean or rng.random() >= 0.99 else 0]
        for pos in ps:
            foil = colors[1] if pos == 0 else colors[0]
            out.append(Case(f"position-{split}-{len(out)}", POSITION_TEMPLATE.format(facts=facts, n=names[pos]),
                            f" {colors[pos]}", f" {foil}", "position", pos,
                            {"favoured": pos == 0, "pair": f"position-{split}-{i}"}))
    return out
