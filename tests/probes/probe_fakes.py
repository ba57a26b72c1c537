"""Scripted fake adapters for known-answer tests: a planted dependence on a probe's variable, and a clean twin.

The fake knows the cases (prompt -> case) and decides per case, with a seeded draw, whether the
model "gets it right": with probability `p_bad` when the case's value is the planted one, else
`p_good`. The clean twin uses `p_good` everywhere. Scores/generations then follow that decision.
With `per="pair"` (default) a clean case's draw is keyed by its minimal set, so item difficulty
varies but the variable has no effect at all; with `per="case"` every case is drawn on its own
(independent noise, for checking the tests' false-positive rate).
"""

from __future__ import annotations

import hashlib

from faultlens.probes.base import pair_of
from faultlens.probes.stats import value_key


def _u(key: str) -> float:
    """A deterministic uniform draw in [0, 1) from a string."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16**12


class PlantedAdapter:
    """score()/generate() whose accuracy drops on cases whose variable equals `bad_value`."""

    name = "fake-planted"

    def __init__(self, cases, bad_value=None, p_good: float = 0.85, p_bad: float = 0.3, per: str = "pair"):
        self.by_prompt = {}
        for c in cases:
            self.by_prompt.setdefault(c.prompt, []).append(c)
        self.bad = None if bad_value is None else value_key(bad_value)
        self.p_good, self.p_bad, self.per = p_good, p_bad, per

    def right(self, case) -> bool:
        if self.bad is not None and value_key(case.value) == self.bad:
            return _u(case.id) < self.p_bad
        return _u(self._key(case)) < self.p_good

    def _key(self, case) -> str:
        return pair_of(case) if self.per == "pair" else case.id

    def _case(self, prompts, conts, i):
        """The case a request belongs to; prompts shared by cases with different foils are told
        apart by the neighbouring request (the runner asks target then foil per case)."""
        cands = self.by_prompt[prompts[i]]
        if len(cands) == 1:
            return cands[0]
        near = {conts[j] for j in (i - 1, i, i + 1) if 0 <= j < len(conts) and prompts[j] == prompts[i]}
        for c in cands:
            if conts[i] in (c.target, c.foil) and {c.target, c.foil} <= near | {conts[i]} and \
                    ((conts[i] == c.target and i + 1 < len(conts) and conts[i + 1] == c.foil) or
                     (conts[i] == c.foil and i > 0 and conts[i - 1] == c.target)):
                return c
        return cands[0]

    def score(self, prompts, continuations):
        out = []
        for i, (p, cont) in enumerate(zip(prompts, continuations)):
            c = self._case(prompts, continuations, i)
            right, mag = self.right(c), 1.0 + 2.0 * _u(self._key(c) + "|m")
            is_target = cont == c.target or cont.strip() == c.target.strip()
            out.append(-1.0 - (0.0 if is_target == right else mag))
        return out

    def generate(self, prompts, max_new_tokens=32, **sampling):
        out = []
        for p in prompts:
            c = self.by_prompt[p][0]
            out.append(c.target.strip() if self.right(c) else c.foil.strip())
        return out


class GenerateOnly(PlantedAdapter):
    """The same planted behaviour behind a black-box interface (no `score`)."""

    name = "fake-blackbox"

    def __getattribute__(self, item):
        if item == "score":
            raise AttributeError(item)
        return super().__getattribute__(item)
