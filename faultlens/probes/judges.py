"""Generation mode: per-probe judges that turn generated text into the same `Result` rows as scoring.

A black-box model (an API) may offer only ``generate(prompts, max_new_tokens, **sampling)``. A
probe then asks for text instead of log-probabilities and a *judge* reads the text: exact match,
"which of target/foil does it say", a regex, or a constraint checker. The judged outcome is
stored as metric ``margin`` with score +1 (says the target), −1 (says the foil) or 0 (neither),
so every probe's analysis (paired tests, CIs, findings) runs unchanged on either mode.

This file holds the judges, the `BatteryProbe` base that adds generation mode and sign-aware
finding text to `Probe`, and `generate_chunk`, the one call a runner makes per chunk of cases in
generation mode. It registers no probe.
"""

from __future__ import annotations

import re
from typing import Any, Callable, ClassVar, Sequence

from faultlens.errors import FaultlensError
from faultlens.probes import stats
from faultlens.probes.base import Probe, pair_of
from faultlens.registry import Registry
from faultlens.types import Case, Result

Judge = Callable[[str, Case], float]  # generated text, case -> +1 target / -1 foil / 0 neither
judges: Registry[Judge] = Registry("judge", "judges")


def normalize(text: str) -> str:
    """Lower-case, drop punctuation, collapse whitespace (SQuAD-style answer normalisation)."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(text.split())


def _first_hit(text: str, answer: str) -> int:
    """Index of `answer` as a whole word/phrase in normalised `text`, or -1."""
    a = normalize(answer)
    if not a:
        return -1
    m = re.search(rf"(?<!\w){re.escape(a)}(?!\w)", normalize(text))
    return m.start() if m else -1


@judges.register("choice")
def choice_judge(text: str, case: Case) -> float:
    """+1 if the text names the target before (or without) the foil, −1 the reverse, 0 neither."""
    t, f = _first_hit(text, case.target), _first_hit(text, case.foil) if case.foil else -1
    if t < 0 and f < 0:
        return 0.0
    if f < 0 or (0 <= t < f):
        return 1.0
    return -1.0


@judges.register("exact")
def exact_judge(text: str, case: Case) -> float:
    """+1 if the first line of the text equals the target after normalisation; −1 if it equals the foil."""
    first = normalize(text.strip().split("\n")[0])
    if first == normalize(case.target):
        return 1.0
    return -1.0 if case.foil and first == normalize(case.foil) else 0.0


@judges.register("regex")
def regex_judge(text: str, case: Case) -> float:
    """meta['target_regex'] (and optional meta['foil_regex']), case-insensitive search."""
    pat = case.meta.get("target_regex")
    if not pat:
        raise FaultlensError(f"Case {case.id!r} uses judge 'regex' but has no meta.target_regex; add one.")
    if re.search(pat, text, re.I):
        return 1.0
    fpat = case.meta.get("foil_regex")
    return -1.0 if fpat and re.search(fpat, text, re.I) else 0.0


# Abstention phrasings for "the right answer is unknown" (hallucination probe, generation mode).
ABSTAIN = (r"\b(i (do not|don't|dont) know|not sure|unknown|no (record|information|such)|(does|did) not exist|"
           r"doesn't exist|fictional|fictitious|made[- ]up|not aware|cannot (find|verify|answer)|can't (find|verify)|"
           r"there is no|never existed|not a real)\b")


@judges.register("abstain")
def abstain_judge(text: str, case: Case) -> float:
    """+1 when the text declines/flags the entity as unknown, −1 when it asserts the foil, else 0."""
    if re.search(ABSTAIN, text, re.I):
        return 1.0
    return -1.0 if case.foil and _first_hit(text, case.foil) >= 0 else 0.0


# ---------------------------------------------------------------- constraint checkers
constraints: Registry[Callable[[str, Any], bool]] = Registry("constraint", "constraints")
constraints.add("uppercase", lambda text, _: bool(re.search(r"[A-Za-z]", text)) and text == text.upper(),
                "every letter is upper-case")
constraints.add("lowercase", lambda text, _: text == text.lower(), "no upper-case letter")
constraints.add("ends_with", lambda text, arg: text.rstrip().rstrip(".!").endswith(str(arg)), "last word is ARG")
constraints.add("starts_with", lambda text, arg: text.lstrip().startswith(str(arg)), "first word is ARG")
constraints.add("max_words", lambda text, arg: len(text.split()) <= int(arg), "at most ARG words")
constraints.add("no_word", lambda text, arg: _first_hit(text, str(arg)) < 0, "never uses the word ARG")


@judges.register("constraint")
def constraint_judge(text: str, case: Case) -> float:
    """meta['constraint'] = {"name": checker, "arg": value}: +1 honoured, −1 broken."""
    spec = case.meta.get("constraint")
    if not isinstance(spec, dict) or "name" not in spec:
        raise FaultlensError(f"Case {case.id!r} uses judge 'constraint' but meta.constraint is not {{\"name\": ..., \"arg\": ...}}.")
    return 1.0 if constraints.get(spec["name"])(text.strip(), spec.get("arg")) else -1.0


# ---------------------------------------------------------------- the probe base
class BatteryProbe(Probe):
    """A `Probe` that also runs in generation mode and words findings by the effect's sign.

    Subclasses set `judge` (default judge name; a case's meta['judge'] overrides it) and may
    override `gen_requests` (e.g. N samples for self-consistency).
    """

    judge_name: ClassVar[str] = "choice"
    max_new_tokens: ClassVar[int] = 24
    in_demo: ClassVar[bool] = False

    def gen_requests(self, case: Case) -> list[tuple[str, dict]]:
        """(prompt, sampling kwargs) to generate for a case; default one greedy completion."""
        return [(case.prompt, {})]

    def judge_text(self, case: Case, text: str) -> float:
        return judges.get(case.meta.get("judge") or self.judge_name)(text, case)

    def judge_generation(self, case: Case, texts: Sequence[str], run_id: str, model: str) -> list[Result]:
        """One `margin` Result from the case's generations: the mean judged outcome in [−1, 1]."""
        verdicts = [self.judge_text(case, t) for t in texts]
        score = sum(verdicts) / len(verdicts)
        detail = {"prompt": case.prompt, "target": case.target, "foil": case.foil, "generations": list(texts),
                  "verdicts": verdicts, "judge": case.meta.get("judge") or self.judge_name, "pair": pair_of(case),
                  "mode": "generate"}
        return [Result(run_id, self.name, case.id, model, case.variable or self.variable, case.value,
                       "margin", score, score > 0, detail)]

    def finding_message(self, eff: stats.VariableEffect, worst: stats.Comparison) -> str:
        acc = {stats.value_key(v.value): v.accuracy for v in eff.values}
        a, r = acc[stats.value_key(worst.value)], acc[stats.value_key(worst.reference)]
        verb = "lowers" if worst.acc_diff < 0 or (worst.acc_diff == 0 and worst.margin_diff < 0) else "raises"
        return (f"{self.variable}={worst.value!r} {verb} accuracy vs {worst.reference!r} ({a:.0%} vs {r:.0%}, "
                f"margin {worst.margin_diff:+.2f} nats; Cohen's h {worst.cohens_h:.2f}, rank-biserial "
                f"{worst.rank_biserial:.2f}, Holm p={worst.p_holm:.2g})")


def generate_chunk(probe: Probe, adapter, chunk: Sequence[Case], run_id: str,
                   max_new_tokens: int | None = None) -> list[Result]:
    """Generation-mode counterpart of the runner's scoring step for one chunk of cases.

    Requests with the same sampling settings go to `adapter.generate` in one call.
    Probes that are not `BatteryProbe`s get one greedy completion judged by `choice_judge`.
    """
    gen = probe.gen_requests if isinstance(probe, BatteryProbe) else (lambda c: [(c.prompt, {})])
    n_new = max_new_tokens or getattr(probe, "max_new_tokens", 24)
    reqs = [(i, p, kw) for i, c in enumerate(chunk) for p, kw in gen(c)]
    by_kw: dict[str, list[tuple[int, int, str, dict]]] = {}
    for j, (i, p, kw) in enumerate(reqs):
        by_kw.setdefault(repr(sorted(kw.items())), []).append((j, i, p, kw))
    texts: list[str] = [""] * len(reqs)
    for group in by_kw.values():
        outs = adapter.generate([p for _, _, p, _ in group], n_new, **group[0][3])
        for (j, *_), out in zip(group, outs):
            texts[j] = out
    per_case: list[list[str]] = [[] for _ in chunk]
    for (i, _, _), t in zip(reqs, texts):
        per_case[i].append(t)
    results = []
    for c, ts in zip(chunk, per_case):
        if isinstance(probe, BatteryProbe):
            results += probe.judge_generation(c, ts, run_id, adapter.name)
        else:
            v = choice_judge(ts[0], c)
            results.append(Result(run_id, probe.name, c.id, adapter.name, c.variable or probe.variable, c.value,
                                  "margin", v, v > 0, {"prompt": c.prompt, "target": c.target, "foil": c.foil,
                                                      "generations": ts, "pair": pair_of(c), "mode": "generate"}))
    return results
