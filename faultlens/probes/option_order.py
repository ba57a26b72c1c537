"""Option order: does the order in which answer options are listed change the choice?

Tiny set: two named children, the question asks for the girl; the single variable is whether the
girl (target) is mentioned first or last ("a girl named Mia and a boy named Ben" vs "a boy named
Ben and a girl named Mia"). General set: a 4-option multiple-choice question whose gold option
is moved through positions A–D with the other options in fixed cyclic order (Zheng et al. 2023,
arXiv:2309.03882; Pezeshkpour & Hruschka 2023, arXiv:2308.11483). All four option labels are
scored; a case passes when the gold label scores highest.

Run `python -m faultlens.probes.option_order` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random

from faultlens.probes.attention_drift import BOYS, GIRLS, name_pairs
from faultlens.probes.base import case_set, pair_of, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.stats import VariableEffect
from faultlens.types import Case, Result

LABELS = ["A", "B", "C", "D"]


@probes.register("option_order")
class OptionOrderProbe(BatteryProbe):
    """Where the right option sits in the list of options (first … last)."""

    name = "option_order"
    variable = "target_position"
    category = "position bias"
    description = "Accuracy as the right answer moves through the listed options."
    in_demo = True


    def requests(self, case: Case) -> list[tuple[str, str]]:
        labels = case.meta.get("labels")
        if not labels:
            return super().requests(case)
        return [(case.prompt, f" {lab}") for lab in labels]

    def judge(self, case: Case, scores: list[float], run_id: str, model: str) -> list[Result]:
        labels = case.meta.get("labels")
        if not labels:
            return super().judge(case, scores, run_id, model)
        gold = labels.index(case.target.strip())
        best_other = max(s for i, s in enumerate(scores) if i != gold)
        margin = scores[gold] - best_other
        detail = {"prompt": case.prompt, "target": case.target, "scores": dict(zip(labels, scores)),
                  "chosen": labels[max(range(len(scores)), key=scores.__getitem__)], "pair": pair_of(case)}
        return [Result(run_id, self.name, case.id, model, self.variable, case.value, "margin", margin, margin > 0, detail)]

    def shape(self, eff: VariableEffect) -> str:
        acc = [v.accuracy for v in eff.values]
        if len(acc) < 2:
            return ""
        if acc[-1] > acc[0] + 0.05:
            return "recency (later options preferred)"
        if acc[0] > acc[-1] + 0.05:
            return "primacy (earlier options preferred)"
        return "flat"


@case_set("option_order", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (girl, boy) in enumerate(name_pairs(rng, n_sets, GIRLS, BOYS)):
        for value, intro in (("first", f"a girl named {girl} and a boy named {boy}"),
                             ("last", f"a boy named {boy} and a girl named {girl}")):
            prompt = f"Once upon a time, there was {intro}. The girl's name was"
            cases.append(Case(f"option_order/{k:03d}/{value}", prompt, f" {girl}", f" {boy}", "target_position", value,
                              {"pair": f"option_order/{k:03d}"}))
    return cases


MCQ = [("What is the capital of Australia?", "Canberra", ["Sydney", "Melbourne", "Perth"]),
       ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Saturn"]),
       ("What is the chemical symbol for sodium?", "Na", ["So", "Sd", "S"]),
       ("How many bones are in the adult human body?", "206", ["196", "216", "186"]),
       ("Who painted the Mona Lisa?", "Leonardo da Vinci", ["Michelangelo", "Raphael", "Titian"]),
       ("What is the largest mammal?", "Blue whale", ["African elephant", "Giraffe", "Sperm whale"]),
       ("Which gas makes up most of Earth's atmosphere?", "Nitrogen", ["Oxygen", "Carbon dioxide", "Argon"]),
       ("What is the freezing point of water in Fahrenheit?", "32", ["0", "100", "212"]),
       ("Which language has the most native speakers?", "Mandarin Chinese", ["English", "Spanish", "Hindi"]),
       ("What is the smallest prime number?", "2", ["1", "3", "0"]),
       ("In which continent is Egypt?", "Africa", ["Asia", "Europe", "South America"]),
       ("What is the hardest natural substance?", "Diamond", ["Quartz", "Iron", "Granite"]),
       ("Who developed the theory of general relativity?", "Albert Einstein", ["Isaac Newton", "Niels Bohr", "Max Planck"]),
       ("What is the main ingredient of guacamole?", "Avocado", ["Tomato", "Onion", "Pepper"]),
       ("How many minutes are in a day?", "1440", ["1240", "1400", "1640"]),
       ("Which ocean lies between Africa and Australia?", "Indian Ocean", ["Atlantic Ocean", "Arctic Ocean", "Southern Ocean"]),
       ("What is the currency of Japan?", "Yen", ["Won", "Yuan", "Ringgit"]),
       ("Which organ produces insulin?", "Pancreas", ["Liver", "Kidney", "Spleen"]),
       ("What is the tallest mountain on Earth?", "Mount Everest", ["K2", "Kangchenjunga", "Mont Blanc"]),
       ("Which metal is liquid at room temperature?", "Mercury", ["Lead", "Tin", "Aluminium"])]


@case_set("option_order", "general")
def _general(rng: random.Random) -> list[Case]:
    cases = []
    for k, (q, right, wrongs) in enumerate(MCQ):
        wrongs = rng.sample(wrongs, len(wrongs))
        for pos in range(len(LABELS)):
            opts = wrongs[:pos] + [right] + wrongs[pos:]
            body = "\n".join(f"{lab}. {o}" for lab, o in zip(LABELS, opts))
            prompt = f"Question: {q}\n{body}\nAnswer with the letter of the correct option.\nAnswer:"
            cases.append(Case(f"option_order-general/{k:03d}/{LABELS[pos]}", prompt, f" {LABELS[pos]}",
                              f" {LABELS[(pos + 1) % 4]}", "target_position", LABELS[pos],
                              {"pair": f"option_order-general/{k:03d}", "labels": LABELS, "options": opts, "judge": "regex",
                               "target_regex": rf"^\W*{LABELS[pos]}\b", "foil_regex": r"^\W*[A-D]\b"}))
    return cases


if __name__ == "__main__":
    OptionOrderProbe.write_case_sets()
