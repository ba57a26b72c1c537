"""Organism model switches, data generators, and the planted-bias export path."""

from __future__ import annotations

import json
import random

import pytest
import torch

from faultlens.errors import FaultlensError
from faultlens.organisms.bias_data import bias_generators
from faultlens.organisms.biases import (
    BiasTrainConfig,
    gap_with_ci,
    measure_bias,
    train_bias_organism,
)
from faultlens.organisms.data import tasks
from faultlens.organisms.model import OrganismConfig, OrganismLM
from faultlens.organisms.positions import position_encodings


@pytest.mark.parametrize("pos", position_encodings.names())
@pytest.mark.parametrize("norm", ["pre", "post", "none"])
def test_every_switch_builds_and_runs(pos, norm):
    cfg = OrganismConfig(vocab_size=16, d_model=16, n_head=2, n_layer=2, block_size=8, pos=pos, norm=norm,
                         qk_norm=pos == "rope", sigma_reparam=norm == "none", sink_logit=pos == "alibi",
                         sink_key=pos in ("alibi", "learned"))
    model = OrganismLM(cfg)
    x = torch.randint(0, 16, (2, 12))  # longer than block_size: every PE must still run
    logits = model(x, record=True)
    assert logits.shape == (2, 12, 16) and torch.isfinite(logits).all()
    p = model.records["blocks.1.attn.pattern"]  # [B, H, T, T]
    assert p.shape == (2, 2, 12, 12)
    if cfg.sink_logit or cfg.sink_key:
        assert (p.sum(-1) <= 1 + 1e-5).all()  # the sink column takes the rest
    else:
        assert torch.allclose(p.sum(-1), torch.ones(2, 2, 12), atol=1e-5)


def test_sigmoid_attention_rows_are_unnormalised_and_causal():
    model = OrganismLM(OrganismConfig(vocab_size=16, d_model=16, n_head=2, n_layer=1, block_size=8, attn_fn="sigmoid"))
    model(torch.randint(0, 16, (1, 8)), record=True)
    p = model.records["blocks.0.attn.pattern"][0]  # [H, T, T]
    seen = torch.ones(8, 8, dtype=torch.bool).tril()
    assert (p[:, ~seen] == 0).all() and (p[:, seen] > 0).all()
    assert not torch.allclose(p.sum(-1), torch.ones(2, 8))  # not a distribution over keys


def test_causal_mask_and_record_leave_outputs_unchanged():
    model = OrganismLM(OrganismConfig(vocab_size=16, d_model=16, n_head=2, n_layer=2, block_size=8))
    x = torch.randint(0, 16, (1, 8))
    a = model(x)
    b = model(x, record={1})
    assert torch.equal(a, b) and "blocks.0.attn.pattern" not in model.records
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % 16
    assert torch.allclose(model(y)[0, :-1], a[0, :-1])  # no position sees the future


def test_sigma_reparam_starts_as_the_plain_linear():
    torch.manual_seed(0)
    plain = OrganismLM(OrganismConfig(vocab_size=16, d_model=16, n_head=2, n_layer=1))
    torch.manual_seed(0)
    sr = OrganismLM(OrganismConfig(vocab_size=16, d_model=16, n_head=2, n_layer=1, sigma_reparam=True))
    x = torch.randint(0, 16, (1, 6))
    assert torch.allclose(plain.eval()(x), sr.eval()(x), atol=1e-4)


def test_bad_config_is_a_clear_error():
    with pytest.raises(FaultlensError, match="Did you mean"):
        OrganismConfig(pos="alibbi")
    with pytest.raises(FaultlensError, match="divisible"):
        OrganismConfig(d_model=10, n_head=4)


def test_tasks_shapes():
    for name in ("prev_token", "bigram_backcopy", "cycle", "stdlib_chars"):
        t = tasks.get(name)() if name != "stdlib_chars" else tasks.get(name)(n_chars=20_000)
        x, y = t.sample(torch.Generator().manual_seed(0), 3, 10, "train")
        assert x.shape == y.shape == (3, 10) and int(x.max()) < t.vocab_size


@pytest.mark.parametrize("name", bias_generators.names())
def test_bias_generators_skew_train_and_balance_test(name):
    gen = bias_generators.get(name)
    train = gen(random.Random(0), 400, "train", False)
    clean = gen(random.Random(0), 400, "train", True)
    test = gen(random.Random(0), 400, "test", False)
    share = lambda cs: sum(bool(c.meta["favoured"]) for c in cs) / len(cs)  # noqa: E731
    assert share(train) > 0.85  # the planted skew
    assert share(test) == pytest.approx(0.5 if name in ("frequency", "surface") else (0.25 if name == "format" else 1 / 3), abs=0.01)
    assert share(clean) < 0.7
    assert all(c.target != c.foil for c in test)


@pytest.mark.parametrize("name", bias_generators.names())
def test_bias_test_cases_are_minimal_sets_over_the_bias_variable(name):
    test = bias_generators.get(name)(random.Random(1), 120, "test", False)
    sets: dict[str, list] = {}
    for c in test:
        sets.setdefault(c.meta["pair"], []).append(c)
    assert len(sets) >= 20
    for members in sets.values():
        values = [c.value for c in members]
        assert len(set(values)) == len(values) >= 2  # one case per value of the variable
        assert {bool(c.meta["favoured"]) for c in members} == {True, False}
        assert len({c.variable for c in members}) == 1
        if name in ("surface", "format"):  # the bias variable is the only change: same answer
            assert len({(c.target, c.foil) for c in members}) == 1


def test_bias_organism_exports_an_hf_model_the_adapter_scores(tmp_path):
    torch.set_num_threads(1)
    d = train_bias_organism("surface", tmp_path / "surface", cfg=BiasTrainConfig(steps=120, n_test=40))
    assert (d / "config.json").is_file() and (d / "model.safetensors").is_file() and (d / "cases.jsonl").is_file()
    lines = [json.loads(line) for line in (d / "cases.jsonl").read_text().splitlines()]
    assert {"id", "prompt", "target", "foil", "variable", "value", "meta"} <= set(lines[0])
    m = measure_bias(d)
    assert m["n"] == 40 and 0.0 <= m["accuracy"] <= 1.0
    # 120 steps already learn the 95 % cue shortcut: the cue-congruent condition wins.
    assert m["gap"] > 0.3 and m["ci95"][0] > 0


def test_gap_ci_known_answer():
    g = gap_with_ci([True] * 90 + [False] * 10, [True] * 50 + [False] * 50)
    assert g["gap"] == pytest.approx(0.4) and g["ci95"][0] < 0.4 < g["ci95"][1]
    full = gap_with_ci([True] * 50, [False] * 50)  # Wald would give the zero-width [1, 1]
    assert full["gap"] == 1.0 and 0.85 < full["ci95"][0] < 1.0
    none = gap_with_ci([True] * 48 + [False] * 2, [True] * 48 + [False] * 2)
    assert none["gap"] == 0.0 and none["ci95"][0] < 0 < none["ci95"][1]
