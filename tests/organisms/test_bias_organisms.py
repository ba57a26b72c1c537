"""Each planted-bias organism has its bias and its clean twin does not (slow: ≤ ~3 min each).

Known-answer check of the whole organism: trained with its default config, scored through
`HFAdapter` on the held-out minimal sets, the biased organism's accuracy gap (favoured −
disfavoured) has a 95 % CI above 0, while the clean twin solves the task (accuracy far above
the 0.5 chance of target-vs-foil) with a gap whose CI covers 0.
"""

from __future__ import annotations

import pytest
import torch

from faultlens.organisms.bias_data import bias_generators
from faultlens.organisms.biases import measure_bias, train_bias_organism


@pytest.mark.slow
@pytest.mark.parametrize("name", bias_generators.names())
def test_biased_organism_has_the_bias_and_its_clean_twin_does_not(name, tmp_path):
    torch.set_num_threads(1)
    biased = measure_bias(train_bias_organism(name, tmp_path / "biased"))
    clean = measure_bias(train_bias_organism(name, tmp_path / "clean", clean=True))
    assert biased["gap"] > 0.2 and biased["ci95"][0] > 0
    assert clean["accuracy"] > 0.85
    assert clean["ci95"][0] <= 0 <= clean["ci95"][1] and abs(clean["gap"]) < 0.1
