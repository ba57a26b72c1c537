"""Attention drift: how much distractor text sits between a fact and the question about it.

The single variable is the number of distractor sentences between the sentence that states the
fact and the question (0 … 24); the fact, names, distractor pool and question are fixed within a
minimal set. On the shipped 260K model the copy accuracy holds up to ~8 sentences and then
decays (docs/probes.md). This file also holds the TinyStories vocabulary other families reuse.

Run `python -m faultlens.probes.attention_drift` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import functools
import random

from faultlens.probes.base import case_set, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.stats import VariableEffect
from faultlens.types import Case

# TinyStories names that are not single frequent tokens (" Lily", " Tim" are; frequency.py uses them).
GIRLS = ["Mia", "Sue", "Sara", "Amy", "Kim", "Jane", "Lucy", "Zoe", "Sally", "Pam", "Kate", "Jill", "Molly", "Lola", "Bella"]
BOYS = ["Ben", "Tom", "Sam", "Max", "Leo", "Bob", "Dan", "Ted", "Ned", "Mark", "Joe", "Hugo"]
NAMES = GIRLS + BOYS
FILLERS = [
    "The sun was shining and the sky was blue.", "The birds sang in the tall green trees.",
    "There was a big red ball in the yard.", "The grass was soft and wet.", "A small dog ran past the house.",
    "The wind blew the leaves around.", "Mom made a cake in the kitchen.", "The cat slept on the warm mat.",
    "A little boat sailed on the pond.", "The flowers in the garden were pretty.", "It was a warm and sunny day.",
    "The bus drove down the long road.", "The moon came out at night.", "A frog jumped into the water.",
    "The car was red and shiny.", "Dad read a book on the couch.", "The tree had many green leaves.",
    "A bee flew over the flowers.", "The rain made big puddles.", "The toys were in a big box.",
    "The duck swam in the lake.", "A cow ate grass on the farm.", "The door of the house was open.",
    "The bread smelled very good.",
]
DISTANCES = [0, 4, 8, 16, 24]


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from faultlens.models.loading import load_model_and_tokenizer

    return load_model_and_tokenizer("stories260k")[1]


def first_token(word: str) -> int:
    """First token id of " word" under the shipped model's 512-token tokenizer."""
    return _tokenizer()(" " + word, add_special_tokens=False).input_ids[0]


def name_pairs(rng: random.Random, n: int, pool_a: list[str] = NAMES, pool_b: list[str] = NAMES) -> list[tuple[str, str]]:
    """n distinct (target, foil) name pairs whose first tokens differ (else the pair is half-decided)."""
    pairs = sorted({(a, b) for a in pool_a for b in pool_b if a != b and first_token(a) != first_token(b)})
    rng.shuffle(pairs)
    if len(pairs) < n:
        raise ValueError(f"only {len(pairs)} name pairs with distinct first tokens; asked for {n}")
    return pairs[:n]


ACTS = ["play", "run", "sing", "draw", "jump", "read", "swim", "dance", "bake", "help"]


def named_items(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    """n (name, foil, activity) triples with distinct first tokens and no (name, activity) repeated,
    so no two minimal sets share a prompt (shared prompts would be pseudo-replicated sets)."""
    out, seen = [], set()
    for name, foil in name_pairs(rng, len(NAMES) * (len(NAMES) - 1) // 3):
        act = rng.choice([a for a in ACTS if (name, a) not in seen] or [None])
        if act is None:
            continue
        seen.add((name, act))
        out.append((name, foil, act))
        if len(out) == n:
            return out
    raise ValueError(f"only {len(out)} distinct named items; asked for {n}")


def fillers(rng: random.Random, k: int, pool: list[str] = FILLERS) -> str:
    """k distinct distractor sentences joined, with a trailing space when non-empty."""
    return " ".join(rng.sample(pool, k)) + (" " if k else "")


@probes.register("attention_drift")
class AttentionDriftProbe(BatteryProbe):
    """Amount of distractor text between a fact and its question: accuracy decays with distance."""

    name = "attention_drift"
    variable = "distance"
    category = "attention drift"
    description = "Recall of a stated fact as distractor sentences pile up between it and the question."
    value_order = DISTANCES
    reference = 0


    def shape(self, eff: VariableEffect) -> str:
        acc = [v.accuracy for v in eff.values]
        if len(acc) < 2:
            return ""
        return "decays with distance" if acc[-1] < acc[0] - 0.05 else "flat"


@case_set("attention_drift", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (name, foil) in enumerate(name_pairs(rng, n_sets)):
        pool = rng.sample(FILLERS, max(DISTANCES))  # the same distractors, growing, within a set
        fact = f"Once upon a time, there was a child named {name}."
        for d in DISTANCES:
            prompt = f"{fact} " + " ".join(pool[:d]) + (" " if d else "") + "The child's name was"
            cases.append(Case(f"attention_drift/{k:03d}/d{d}", prompt, f" {name}", f" {foil}", "distance", d,
                              {"pair": f"attention_drift/{k:03d}", "key_span": [0, len(fact)]}))
    return cases


FACTS = [("the blue door", "7"), ("the red door", "3"), ("the green key", "5"), ("the oak table", "9"),
         ("the north gate", "2"), ("the silver box", "8"), ("the brass bell", "4"), ("the glass jar", "6")]
NOISE = [
    "The committee met on Tuesday to discuss the annual budget.", "Rainfall in the region was above average this year.",
    "The library extended its opening hours during exams.", "A new bridge was opened to traffic in the spring.",
    "The museum added a wing dedicated to modern sculpture.", "Local farmers reported a good harvest of apples.",
    "The train schedule changed at the start of the month.", "A small bakery opened near the central square.",
    "The school choir won a regional singing contest.", "Engineers tested the new water pipes last week.",
    "The park was repainted in bright colours.", "Visitors praised the quiet beaches of the coast.",
    "The council approved plans for a cycling lane.", "A storm delayed several flights at the airport.",
    "The orchestra announced its programme for the season.", "Students planted trees along the river bank.",
    "The market sells fresh fish every Friday.", "A documentary about bees won an award.",
    "The old mill was turned into a cafe.", "Prices of bicycles rose slightly this year.",
    "The town celebrated its founding with fireworks.", "A new bus line connects the two suburbs.",
    "The zoo welcomed two baby giraffes.", "Volunteers cleaned the hiking trails in autumn.",
]


@case_set("attention_drift", "general")
def _general(rng: random.Random, n_sets: int = 40) -> list[Case]:
    cases = []
    for k in range(n_sets):
        obj, num = rng.choice(FACTS)
        foil = str(rng.choice([d for d in "23456789" if d != num]))
        pool = rng.sample(NOISE, max(DISTANCES))
        fact = f"Remember this: the number written on {obj} is {num}."
        for d in DISTANCES:
            body = " ".join([fact] + pool[:d])
            prompt = f"{body}\nQuestion: What number is written on {obj}? Answer with the number only.\nAnswer:"
            cases.append(Case(f"attention_drift-general/{k:03d}/d{d}", prompt, f" {num}", f" {foil}", "distance", d,
                              {"pair": f"attention_drift-general/{k:03d}", "key_span": [0, len(fact)], "judge": "choice"}))
    return cases


if __name__ == "__main__":
    AttentionDriftProbe.write_case_sets()
