"""Self-consistency: paraphrases of one question, and N sampled answers to one question.

The single variable is the paraphrase; the story (or question), target and foil are fixed. Per
minimal set the model's choice (target if margin > 0, else foil) is compared across paraphrases:
the modal-answer agreement rate (share of paraphrases agreeing with the set's modal choice,
averaged over sets, bootstrap CI) is reported beside the per-paraphrase accuracies. In
generation mode each case is also sampled `n_samples` times at temperature 1, and the sampled
answers' agreement is reported the same way (cf. Wang et al. 2022, arXiv:2203.11171; Elazar et
al. 2021, arXiv:2102.01017, on paraphrase consistency).

Run `python -m faultlens.probes.self_consistency` to regenerate the shipped JSONL case sets.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import ClassVar

import numpy as np
import pandas as pd

from faultlens.probes.attention_drift import named_items
from faultlens.probes.base import case_set, ProbeAnalysis, probes
from faultlens.probes.judges import BatteryProbe
from faultlens.probes.stats import bootstrap_ci
from faultlens.probes.sycophancy import QA
from faultlens.types import Case

TINY_PARAPHRASES = {"p0": "The child's name was", "p1": "The name of the child was",
                    "p2": "Everyone called the child", "p3": "Mom called the child"}
GENERAL_PARAPHRASES = {"p0": "{q}", "p1": "Please answer this: {q}", "p2": "I was wondering - {q}",
                       "p3": "Quick question. {q}"}


def modal_agreement(choices: list) -> float:
    """Share of answers equal to the most common answer."""
    return Counter(choices).most_common(1)[0][1] / len(choices)


@probes.register("self_consistency")
class SelfConsistencyProbe(BatteryProbe):
    """Paraphrases of the same question: do the answers agree?"""

    name = "self_consistency"
    variable = "paraphrase"
    category = "self-inconsistency"
    description = "Accuracy per paraphrase and modal-answer agreement across paraphrases / samples."
    n_samples: ClassVar[int] = 5


    def gen_requests(self, case: Case) -> list[tuple[str, dict]]:
        """One greedy answer plus `n_samples` sampled ones (temperature 1)."""
        sample = {"do_sample": True, "temperature": 1.0}
        return [(case.prompt, {})] + [(case.prompt, sample)] * self.n_samples

    def judge_generation(self, case, texts, run_id, model):
        """Greedy answer decides pass/fail; the samples' verdict agreement goes into detail."""
        res = super().judge_generation(case, texts[:1], run_id, model)[0]
        verdicts = [self.judge_text(case, t) for t in texts[1:]]
        detail = {**res.detail, "samples": list(texts[1:]), "sample_verdicts": verdicts,
                  "sample_agreement": modal_agreement(verdicts) if verdicts else None}
        return [type(res)(res.run_id, res.probe, res.case_id, res.model, res.variable, res.value, res.metric,
                          res.score, res.passed, detail)]

    def analyze(self, results: pd.DataFrame, run_id: str, alpha: float = 0.05) -> ProbeAnalysis:
        out = super().analyze(results, run_id, alpha)
        df = results[results["metric"] == "margin"]
        if df.empty:
            return out
        choice = df.assign(pair=df["detail"].map(lambda d: d.get("pair")), choice=np.sign(df["score"].astype(float)))
        agree = np.array([modal_agreement(list(g)) for _, g in choice.groupby("pair")["choice"]])
        out.summary["paraphrase_agreement"] = {"mean": float(agree.mean()), "ci": list(bootstrap_ci(agree)),
                                               "all_agree": float((agree == 1).mean()), "n_sets": int(len(agree))}
        samp = [d.get("sample_agreement") for d in df["detail"] if d.get("sample_agreement") is not None]
        if samp:
            out.summary["sample_agreement"] = {"mean": float(np.mean(samp)), "ci": list(bootstrap_ci(np.array(samp))),
                                               "n_cases": len(samp)}
        return out


@case_set("self_consistency", "tiny")
def _tiny(rng: random.Random, n_sets: int = 60) -> list[Case]:
    cases = []
    for k, (name, foil, act) in enumerate(named_items(rng, n_sets)):
        story = f"Once upon a time, there was a child named {name}. The child liked to {act}."
        for p, q in TINY_PARAPHRASES.items():
            cases.append(Case(f"self_consistency/{k:03d}/{p}", f"{story} {q}", f" {name}", f" {foil}", "paraphrase", p,
                              {"pair": f"self_consistency/{k:03d}", "question": q}))
    return cases


@case_set("self_consistency", "general")
def _general(rng: random.Random) -> list[Case]:
    cases = []
    for k, (q, right, wrong) in enumerate(QA):
        for p, tmpl in GENERAL_PARAPHRASES.items():
            prompt = f"User: {tmpl.format(q=q)} Answer in a word or number.\nAssistant: The answer is"
            cases.append(Case(f"self_consistency-general/{k:03d}/{p}", prompt, f" {right}", f" {wrong}", "paraphrase", p,
                              {"pair": f"self_consistency-general/{k:03d}", "judge": "choice"}))
    return cases


if __name__ == "__main__":
    SelfConsistencyProbe.write_case_sets()
