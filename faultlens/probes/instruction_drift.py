"""Instruction drift: a constraint given at the start, checked after growing amounts of conversation.

The single variable is how many conversation turns (tiny: story sentences) separate the
instruction from the turn where it is checked. General set: a system instruction (answer in
upper case / wrap the answer in brackets), `turns` earlier user–assistant exchanges that all
honour it, then a question; the target is the honouring answer and the foil the same answer
unformatted; generation mode checks the constraint with `judges.constraint_judge`
(cf. Li et al. 2024, "Measuring and Controlling Instruction (In)Stability", arXiv:2402.10962).

Tiny set: Mom tells the child to say a word when it sees an animal; after `turns` distractor
sentences the child sees it. Target and foil words are counterbalanced within the set.

Run `python -m faultlens.probes.instruction_drift` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random

from faultlens.probes.attention_drift import FILLERS, NAMES
from faultlens.probes.base import case_set, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.stats import VariableEffect
from faultlens.probes.sycophancy import QA
from faultlens.types import Case

TURNS = [0, 2, 4, 8]
WORDS = [("hello", "bye"), ("bye", "hello"), ("yes", "no"), ("no", "yes"), ("thank you", "sorry"), ("sorry", "thank you")]
CONSTRAINTS = {
    "uppercase": ("Always answer in UPPER-CASE letters only.", str.upper, {"name": "uppercase"}),
    "brackets": ("Always put your answer in square brackets, like [answer].", lambda s: f"[{s}]",
                 {"name": "starts_with", "arg": "["}),
}


@probes.register("instruction_drift")
class InstructionDriftProbe(BatteryProbe):
    """Turns between an instruction and the check: the constraint stops being honoured."""

    name = "instruction_drift"
    variable = "turns"
    category = "instruction drift"
    description = "Whether a constraint given at the start is honoured after more and more conversation."
    value_order = TURNS
    reference = 0
    judge_name = "constraint"


    def shape(self, eff: VariableEffect) -> str:
        acc = [v.accuracy for v in eff.values]
        return "" if len(acc) < 2 else ("drifts with turns" if acc[-1] < acc[0] - 0.05 else "flat")


@case_set("instruction_drift", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    animals = ["dog", "cat", "bird", "cow", "duck", "frog"]
    for k in range(n_sets):
        name, animal = rng.choice(NAMES), animals[k % len(animals)]
        word, foil = WORDS[k % len(WORDS)]
        pool = rng.sample(FILLERS, max(TURNS))
        rule = f"Once upon a time, Mom told {name}, \"When you see a {animal}, say {word}.\""
        for t in TURNS:
            prompt = f"{rule} " + " ".join(pool[:t]) + (" " if t else "") + f"{name} saw a {animal}. {name} said, \""
            cases.append(Case(f"instruction_drift/{k:03d}/t{t}", prompt, word, foil, "turns", t,
                              {"pair": f"instruction_drift/{k:03d}", "key_span": [0, len(rule)], "judge": "choice"}))
    return cases


@case_set("instruction_drift", "general")
def _general(rng: random.Random) -> list[Case]:
    cases = []
    for k, (q, right, _) in enumerate(QA):
        # upper-casing a number changes nothing, so numeric answers get the bracket constraint
        cname = "brackets" if k % 2 or not any(ch.isalpha() for ch in right) else "uppercase"
        instr, fmt, spec = CONSTRAINTS[cname]
        history = rng.sample([x for x in QA if x[0] != q], max(TURNS))
        for t in TURNS:
            turns = "".join(f"User: {hq}\nAssistant: {fmt(ha)}\n" for hq, ha, _ in history[:t])
            prompt = f"System: {instr}\n{turns}User: {q}\nAssistant:"
            cases.append(Case(f"instruction_drift-general/{k:03d}/t{t}", prompt, f" {fmt(right)}", f" {right}", "turns", t,
                              {"pair": f"instruction_drift-general/{k:03d}", "constraint": spec, "constraint_kind": cname,
                               "judge": "constraint", "key_span": [0, len(f"System: {instr}")]}))
    return cases


if __name__ == "__main__":
    InstructionDriftProbe.write_case_sets()
