"""Surface association: a lexical cue that co-occurs with the wrong answer, present vs absent.

HANS-style (McCoy et al. 2019, arXiv:1902.01007): the cue is word overlap between the question
and the text around the foil. In the tiny set the question is "The girl was named" and the one
word "named" is inserted before the foil ("She had a dog named Ben." vs "She had a dog Ben.");
in the general set the hypothesis of an entailment item is made of the premise's own words
(lexical overlap) or not, while the right answer ("no") stays the same. A minimal pair differs
only in that cue.

Run `python -m faultlens.probes.surface` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random

from faultlens.probes.attention_drift import BOYS, GIRLS, name_pairs
from faultlens.probes.base import case_set, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.types import Case

PETS = ["dog", "cat", "bird", "fish", "frog", "duck"]


@probes.register("surface")
class SurfaceProbe(BatteryProbe):
    """A cue word shared by the question and the foil's context: present vs absent."""

    name = "surface"
    variable = "cue"
    category = "surface association"
    description = "Does a lexical overlap between the question and the foil's context flip the answer?"
    value_order = ["absent", "present"]
    reference = "absent"
    in_demo = True



@case_set("surface", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (girl, other) in enumerate(name_pairs(rng, n_sets, GIRLS, BOYS)):
        pet = PETS[k % len(PETS)]
        for value, cue in (("absent", ""), ("present", "named ")):
            prompt = f"Once upon a time, there was a girl, {girl}. She had a {pet} {cue}{other}. The girl was named"
            cases.append(Case(f"surface/{k:03d}/{value}", prompt, f" {girl}", f" {other}", "cue", value,
                              {"pair": f"surface/{k:03d}", "cue_word": "named"}))
    return cases


# (subject, object, verb, other verb): "The {s} who the {o} saw {v}." never entails "The {o} {v}."
NOUNS = ["doctor", "lawyer", "actor", "banker", "student", "artist", "senator", "author", "tourist", "manager"]
VERBS = [("danced", "sang"), ("slept", "laughed"), ("resigned", "shouted"), ("waited", "left"), ("ran", "swam")]


@case_set("surface", "general")
def _general(rng: random.Random, n_sets: int = 40) -> list[Case]:
    cases = []
    for k in range(n_sets):
        subj, obj = rng.sample(NOUNS, 2)
        verb, other_verb = rng.choice(VERBS)
        premise = f"The {subj} who the {obj} saw {verb}."
        for value, hyp in (("absent", f"The {obj} {other_verb}."), ("present", f"The {obj} {verb}.")):
            prompt = (f"Premise: {premise}\nHypothesis: {hyp}\nDoes the premise entail the hypothesis? "
                      f"Answer yes or no.\nAnswer:")
            cases.append(Case(f"surface-general/{k:03d}/{value}", prompt, " no", " yes", "cue", value,
                              {"pair": f"surface-general/{k:03d}", "heuristic": "lexical overlap", "judge": "choice"}))
    return cases


if __name__ == "__main__":
    SurfaceProbe.write_case_sets()
