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
    assert biased["gap"] > 0.1 and biased["ci95"][0] > 0.05
    assert clean["accuracy"] > 0.85
    assert clean["ci95"][0] <= 0 <= clean["ci95"][1] and abs(clean["gap"]) < 0.1


def _battery_findings(model_dir, probe: str, tmp_path) -> list:
    """Run the probe battery's family of the same name on the organism's held-out cases."""
    from faultlens.models.hf import HFAdapter
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig, run_scan
    from faultlens.store import Store

    cfg = ScanConfig(str(model_dir), (probe,), ProbeConfig(cases_file=str(model_dir / "cases.jsonl")), features=False)
    report = run_scan(HFAdapter.load(str(model_dir)), Store(tmp_path / f"{model_dir.name}.sqlite"), cfg)
    return report.analyses[probe].findings


@pytest.mark.slow
@pytest.mark.parametrize("name", bias_generators.names())
def test_probe_battery_flags_each_organism_with_the_right_sign_and_not_its_twin(name, tmp_path):
    """Issue 5's organism check: the family's analysis finds the planted bias, and only there."""
    import json

    torch.set_num_threads(1)
    biased = train_bias_organism(name, tmp_path / "biased")
    clean = train_bias_organism(name, tmp_path / "clean", clean=True)
    found = _battery_findings(biased, name, tmp_path)
    assert len(found) == 1
    disfavoured = {json.dumps(c["value"]) for c in map(json.loads, (biased / "cases.jsonl").read_text().splitlines())
                   if not c["meta"]["favoured"]}
    assert json.dumps(found[0].evidence["value"]) in disfavoured and found[0].evidence["acc_diff"] < 0
    assert _battery_findings(clean, name, tmp_path) == []
