"""Position bias / lost in the middle: one key fact moves through a run of distractor sentences.

The single variable is the fact's slot among N distractors (0 = first sentence, N = last before
the question); everything else in a minimal set (names, distractors, question, foil) is fixed.
Liu et al. 2023 ("Lost in the Middle", arXiv:2307.03172) report a U shape for LLMs; on the
shipped 260K TinyStories model we measured a primacy *deficit* instead (a name stated in the
first sentence is copied less often than one stated later), see docs/probes.md.

Run `python -m faultlens.probes.position` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random

from faultlens.probes.base import case_set, Probe, probes
from faultlens.probes.stats import VariableEffect
from faultlens.types import Case

# Names chosen so that target and foil start with different tokens in the 512-token vocabulary
# of stories260k (a shared first token would make the pair partly undecidable).
NAMES = ["Mia", "Sue", "Sara", "Amy", "Kim", "Jane", "Lucy", "Zoe", "Sally", "Pam", "Kate", "Jill",
         "Ben", "Tom", "Sam", "Tim", "Max", "Leo", "Bob", "Dan", "Ted", "Ned", "Mark", "Joe"]
FILLERS = [
    "The sun was shining and the sky was blue.", "The birds sang in the tall green trees.",
    "There was a big red ball in the yard.", "The grass was soft and wet.", "A small dog ran past the house.",
    "The wind blew the leaves around.", "Mom made a cake in the kitchen.", "The cat slept on the warm mat.",
    "A little boat sailed on the pond.", "The flowers in the garden were pretty.", "It was a warm and sunny day.",
    "The bus drove down the long road.",
]
N_DISTRACTORS = 8
SLOTS = [0, 2, 4, 6, 8]

# General-domain set: key-value retrieval in the style of Liu et al.'s synthetic task.
KEYS = ["apple", "river", "lantern", "violet", "copper", "harbor", "meadow", "falcon", "glacier", "orchid",
        "pepper", "saddle", "thunder", "walnut", "zephyr", "marble", "canyon", "ember", "quartz", "willow"]


@probes.register("position")
class PositionProbe(Probe):
    """Where the key fact sits among distractors (start … end): primacy / recency / U-shape."""

    name = "position"
    variable = "position"
    category = "position bias"
    description = "Accuracy of recalling a fact as it moves from the first to the last slot among distractors."


    def shape(self, eff: VariableEffect) -> str:
        acc = [v.accuracy for v in eff.values]
        if len(acc) < 3:
            return ""
        first, last, mid = acc[0], acc[-1], min(acc[1:-1])
        gap = 0.05
        if mid < first - gap and mid < last - gap:
            return "U-shape (lost in the middle)"
        if first < last - gap and first <= mid:
            return "primacy deficit (early facts recalled worse)"
        if last < first - gap and last <= mid:
            return "recency deficit (late facts recalled worse)"
        return "flat"


@case_set("position", "tiny")
def _tiny_cases(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    from faultlens.probes.attention_drift import first_token  # shipped tokenizer: pairs must differ at token 1

    pairs = sorted((a, b) for a in NAMES for b in NAMES if a != b and first_token(a) != first_token(b))
    rng.shuffle(pairs)
    for k, (name, foil) in enumerate(pairs[:n_sets]):
        fillers = rng.sample(FILLERS, N_DISTRACTORS)
        for slot in SLOTS:
            fact = f"There was a child named {name}."
            sents = fillers[:slot] + [fact] + fillers[slot:]
            body = " ".join(sents)
            prompt = "Once upon a time, " + body[0].lower() + body[1:] + " The child's name was"
            start = prompt.lower().index(fact.lower())
            cases.append(Case(
                id=f"position/{k:03d}/slot{slot}", prompt=prompt, target=f" {name}", foil=f" {foil}",
                variable="position", value=slot,
                meta={"pair": f"position/{k:03d}", "key_span": [start, start + len(fact)], "n_distractors": N_DISTRACTORS},
            ))
    return cases


@case_set("position", "general")
def _general_cases(rng: random.Random, n_sets: int = 40, n_docs: int = 10) -> list[Case]:
    cases = []
    slots = [0, n_docs // 4, n_docs // 2, 3 * n_docs // 4, n_docs - 1]
    for k in range(n_sets):
        keys = rng.sample(KEYS, n_docs)
        vals = [str(rng.randint(1000, 9999)) for _ in keys]
        query_key, query_val = keys[0], vals[0]
        others = list(zip(keys[1:], vals[1:]))
        for slot in slots:
            items = others[:slot] + [(query_key, query_val)] + others[slot:]
            lines = [f"The code for {kk} is {vv}." for kk, vv in items]
            body = "\n".join(lines)
            prompt = (f"Read the list and answer the question.\n{body}\nQuestion: What is the code for {query_key}?\nAnswer:")
            fact = f"The code for {query_key} is {query_val}."
            start = prompt.index(fact)
            cases.append(Case(
                id=f"position-general/{k:03d}/slot{slot}", prompt=prompt, target=f" {query_val}", foil=f" {others[0][1]}",
                variable="position", value=slot,
                meta={"pair": f"position-general/{k:03d}", "key_span": [start, start + len(fact)], "n_distractors": n_docs - 1},
            ))
    return cases


if __name__ == "__main__":
    PositionProbe.write_case_sets()
