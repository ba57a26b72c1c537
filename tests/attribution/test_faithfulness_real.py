"""Faithfulness ordering on failing name-recall cases of the shipped stories260k model.

Asserted: deletion-AOPC of LRP ≥ gradient × input, and LRP > random. Reported (printed, not
asserted): gradient × input vs random, which on this model depends on the masking token (see
docs/attribution.md); the planted-cue test asserts the full ordering.
"""

from __future__ import annotations

import numpy as np
import pytest

from faultlens.attribution import explain
from faultlens.attribution.demo import DEMO_CASES
from faultlens.models.hf import HFAdapter

EXTRA = [
    ("Once upon a time, there was a little girl named Anna. She loved to play outside. One day, Anna met a boy "
     "named Bob. They played together in the park. The girl's name was", " Anna", " Bob"),
    ("Once upon a time, there was a little girl named Sue. She loved to play outside. She had a red ball. She liked "
     "to draw pictures. One day, Sue met a boy named Max. They played together in the park. He was very kind. "
     "The girl's name was", " Sue", " Max"),
]


@pytest.fixture(scope="module")
def stories():
    return HFAdapter.load("stories260k")


@pytest.mark.slow
def test_lrp_deletion_aopc_beats_gradient_x_input_and_random(stories):
    cases = [(c.prompt, c.target, c.foil) for c in DEMO_CASES] + EXTRA
    aopc = {m: [] for m in ("cp-lrp", "attnlrp", "grad_x_input")}
    rand = []
    for p, t, f in cases:
        s = stories.score([p, p], [t, f])
        assert s[0] < s[1], "each case is a failure of the model"
        for m in aopc:
            e = explain(stories, p, t, f, method=m)
            aopc[m].append(e.faithfulness["deletion_aopc"])
        rand.append(e.faithfulness["random_deletion_aopc"])
    mean = {m: float(np.mean(v)) for m, v in aopc.items()}
    print("\nstories260k deletion-AOPC (mean of %d failing cases): " % len(cases)
          + ", ".join(f"{m} {v:.3f}" for m, v in mean.items()) + f", random {np.mean(rand):.3f}")
    assert mean["cp-lrp"] >= mean["grad_x_input"]
    assert mean["attnlrp"] >= mean["grad_x_input"]
    assert mean["cp-lrp"] > np.mean(rand)
