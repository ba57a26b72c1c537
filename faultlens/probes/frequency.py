"""Frequency bias: is a stated answer copied less when it is a rare word than when it is frequent?

A minimal pair takes one frequent and one rare name. In the "frequent" case the story names the
frequent one (target) and the rare one is the foil; in the "rare" case the two swap. The prompt
differs only in that name, so a drop in accuracy or margin on the "rare" side is the model
preferring the frequent foil over the correct rare target (cf. Razeghi et al. 2022,
arXiv:2202.07206, on pretraining term frequency).

Frequency comes from the tokenizer when nothing better is known: a word the BPE merged into a
single token was frequent in the tokenizer's training corpus (" Lily" is token 317 of the 512 of
stories260k); `text_counts` counts words in a text the user gives instead.

Run `python -m faultlens.probes.frequency` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from faultlens.probes.attention_drift import NAMES, _tokenizer, first_token
from faultlens.probes.base import case_set, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.types import Case

FREQUENT = ["Lily", "Tim"]  # single tokens in the stories260k vocabulary (ids 317, 326)
TEMPLATES = [
    "Once upon a time, there was a child named {}. The child liked to play. The child's name was",
    "Once upon a time, there was a little girl named {}. She had a red ball. The girl's name was",
    "One day, a boy named {} went to the park. He saw a big dog. The boy's name was",
    "There was a kind friend called {}. The friend liked to help. Everyone called the friend",
]


def token_counts(words: list[str], tokenizer=None) -> dict[str, int]:
    """Number of tokens of " word" under a tokenizer (fewer = more frequent in its training text)."""
    tok = tokenizer or _tokenizer()
    return {w: len(tok(" " + w, add_special_tokens=False).input_ids) for w in words}


def text_counts(words: list[str], text: str) -> dict[str, int]:
    """Occurrences of each word (case-sensitive, whole word) in a user-given text."""
    counts = Counter(re.findall(r"\w+", text))
    return {w: counts.get(w, 0) for w in words}


@probes.register("frequency")
class FrequencyProbe(BatteryProbe):
    """Frequent vs rare answer in an otherwise identical case: the frequent foil wins."""

    name = "frequency"
    variable = "answer_frequency"
    category = "frequency bias"
    description = "Copying a stated name when it is frequent vs rare in the training data (foil = the other)."
    value_order = ["frequent", "rare"]
    reference = "frequent"
    in_demo = True



def _pair_cases(k: int, prefix: str, template: str, frequent: str, rare: str, meta: dict) -> list[Case]:
    pid = f"{prefix}/{k:03d}"
    return [Case(f"{pid}/{v}", template.format(ans), f" {ans}", f" {other}", "answer_frequency", v,
                 {"pair": pid, "frequent": frequent, "rare": rare, **meta})
            for v, ans, other in (("frequent", frequent, rare), ("rare", rare, frequent))]


@case_set("frequency", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    taken = {first_token(f) for f in FREQUENT}
    rares = [r for r in NAMES if first_token(r) not in taken]  # the pair must differ in its first token
    rng.shuffle(rares)
    n_tok = token_counts(FREQUENT + NAMES)
    cases = []
    combos = [(f, r, t) for f in FREQUENT for r in rares for t in TEMPLATES]
    for k, (frequent, rare, template) in enumerate(rng.sample(combos, n_sets)):  # no set repeated
        meta = {"freq_source": "stories260k tokenizer (tokens per word)", "n_tokens": {frequent: n_tok[frequent], rare: n_tok[rare]}}
        cases += _pair_cases(k, "frequency", template, frequent, rare, meta)
    return cases


# General set: very common English given names vs rare ones (US SSA top-10 vs names outside the top-1000).
COMMON = ["John", "Mary", "James", "Michael", "David", "Sarah", "Emma", "Robert"]
RARE = ["Thaddeus", "Ottoline", "Leopold", "Perpetua", "Ignatius", "Wilhelmina", "Cosimo", "Isolde", "Barnaby", "Clementine"]
GENERAL = [
    "My new colleague introduced herself as {}. Later my manager asked me for her name.\nQuestion: What is my colleague's name?\nAnswer:",
    "The package was signed for by a courier named {}.\nQuestion: Who signed for the package?\nAnswer:",
    "In the story, the detective who solves the case is called {}.\nQuestion: What is the detective called?\nAnswer:",
    "The winner of this year's village chess tournament was {}.\nQuestion: Who won the chess tournament?\nAnswer:",
]


@case_set("frequency", "general")
def _general(rng: random.Random, n_sets: int = 40) -> list[Case]:
    cases = []
    combos = [(g, c, r) for g in GENERAL for c in COMMON for r in RARE]
    for k, (template, common, rare) in enumerate(rng.sample(combos, n_sets)):
        meta = {"freq_source": "US SSA given-name ranks (top-10 vs outside top-1000)", "judge": "choice"}
        cases += _pair_cases(k, "frequency-general", template, common, rare, meta)
    return cases


if __name__ == "__main__":
    FrequencyProbe.write_case_sets()
