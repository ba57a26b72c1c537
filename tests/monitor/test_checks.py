"""Known-answer tests for each monitor check: plant the failure, the check fires; the clean twin stays quiet."""

from __future__ import annotations

import math

import pytest
import torch

from faultlens.monitor.check import Observation, checks
from faultlens.monitor.config import MonitorConfig, Thresholds
from faultlens.monitor.health import HealthMonitor, pick_layers
from faultlens.organisms.model import OrganismConfig, OrganismLM
from faultlens.organisms.recipes import recipes, run_twin


@pytest.fixture(autouse=True)
def _threads():
    torch.set_flush_denormal(True)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pair(name: str, steps: int | None = None):
    r = recipes.get(name)
    path, _, _ = run_twin(r, False, steps=steps)
    mit, _, _ = run_twin(r, True, steps=steps)
    return r, path, mit


def test_entropy_collapse_and_logit_growth_fire_only_without_qk_norm():
    _, path, mit = _pair("entropy_collapse")
    assert {"entropy collapse", "attention logit growth"} <= set(path.fired)
    assert not {"entropy collapse", "attention logit growth"} & set(mit.fired)
    assert path.numbers["attn.max_logit"] > 10 * mit.numbers["attn.max_logit"]


def test_rank_collapse_fires_on_pure_attention_not_on_pre_ln():
    _, path, mit = _pair("rank_collapse", steps=8)
    assert path.fired.get("rank collapse") is not None and path.fired["rank collapse"] <= 5
    assert "rank collapse" not in mit.fired


def test_nonfinite_names_where_it_starts_and_bf16_twin_is_clean():
    _, path, mit = _pair("nan_loss", steps=10)
    assert "numerical instability" in path.fired and path.nan_step is not None
    assert "numerical instability" not in mit.fired and mit.nan_step is None


def test_log_partition_drift_fires_without_z_loss():
    _, path, mit = _pair("logit_drift", steps=70)
    assert "output logit divergence" in path.fired
    assert "output logit divergence" not in mit.fired
    assert abs(mit.numbers["out.log_z"]) < path.numbers["out.log_z"]


def test_order_blindness_is_exact_without_positions():
    _, path, mit = _pair("order_blindness", steps=5)
    assert "order blindness" in path.fired and path.numbers["pos.equivariance_error"] < 1e-5
    assert "order blindness" not in mit.fired and mit.numbers["pos.equivariance_error"] > 0.1


def test_vanishing_gradients_in_deep_post_ln_but_not_pre_ln():
    _, path, mit = _pair("vanishing_gradients", steps=22)
    assert "vanishing gradient" in path.fired
    assert "vanishing gradient" not in mit.fired


def test_attention_sink_grows_on_bos_but_not_with_sigmoid_attention():
    _, path, mit = _pair("attention_sinks", steps=100)
    assert "attention sink" in path.fired
    assert "attention sink" not in mit.fired
    assert path.numbers["attn.sink_mass.L0"] > 2 * mit.numbers["attn.sink_mass.L0"]


def _obs_with(model, x, **kw):
    return Observation(0, kw.pop("phase", "step"), model, 1.0, x, list(range(model.cfg.n_layer)), **kw)


def _pattern_obs(pattern):
    from faultlens.monitor.taps import Internals

    model = OrganismLM(OrganismConfig(vocab_size=8, d_model=8, n_head=2, n_layer=1))
    obs = Observation(0, "step", model, 1.0, torch.zeros(1, pattern.shape[-1], dtype=torch.long), [0])
    obs.__dict__["internals"] = Internals(logits=torch.zeros(1, 1, 1), n_layers=1, pattern={0: pattern})
    return obs


def test_sink_check_on_planted_first_token_attention():
    T = 12
    causal = torch.ones(T, T).tril()
    uniform = (causal / causal.sum(-1, keepdim=True)).expand(2, 4, T, T)  # [B, H, T, T]
    sunk = uniform.clone()
    sunk[:, :2] = 0.0
    sunk[:, :2, :, 0] = 1.0  # plant: heads 0 and 1 put all their mass on key 0
    _, alarm = checks.get("attention_sink")(Thresholds(patience=1)).observe(_pattern_obs(sunk))
    assert alarm is not None and alarm.evidence["sink_heads"] == 2
    _, alarm = checks.get("attention_sink")(Thresholds(patience=1)).observe(_pattern_obs(uniform))
    assert alarm is None


def test_lazy_layer_check_names_the_planted_layer():
    torch.manual_seed(0)
    cfg = OrganismConfig(vocab_size=16, d_model=32, n_head=2, n_layer=3, init_std=0.5)
    model = OrganismLM(cfg)
    x = torch.randint(0, 16, (2, 12))
    _, alarm = checks.get("lazy_layers")(Thresholds()).observe(_obs_with(model, x, phase="eval"))
    assert alarm is None
    with torch.no_grad():
        model.blocks[1].attn.proj.weight.zero_()  # plant: layer 1's attention does nothing
    _, alarm = checks.get("lazy_layers")(Thresholds()).observe(_obs_with(model, x, phase="eval"))
    assert alarm is not None and alarm.evidence["lazy"] == [1]


def _feed(losses):
    check = checks.get("loss_trend")(Thresholds())
    model = OrganismLM(OrganismConfig(vocab_size=8, d_model=8, n_head=2, n_layer=1))
    alarms = []
    for s, v in enumerate(losses):
        _, a = check.observe(Observation(s, "step", model, v, None, [], sampled=False))
        if a:
            alarms.append((s, a.category))
    return alarms


def test_loss_trend_divergence_oscillation_and_quiet_on_healthy_curve():
    g = torch.Generator().manual_seed(0)
    healthy = [3.0 * math.exp(-s / 80) + 1.0 + 0.03 * float(torch.randn(1, generator=g)) for s in range(200)]
    assert _feed(healthy) == []
    diverging = [3.0 - s / 100 for s in range(100)] + [2.0 + s / 20 for s in range(60)]
    assert ("loss divergence" in {c for _, c in _feed(diverging)})
    spiky = [2.0 if s % 7 else 4.0 for s in range(100)]
    assert "loss oscillation" in {c for _, c in _feed(spiky)}


def test_pick_layers_and_state_roundtrip(tmp_path):
    assert pick_layers(12, 4) == [0, 4, 7, 11] and pick_layers(3, 4) == [0, 1, 2]
    r = recipes.get("rank_collapse")
    _, _, mon = run_twin(r, False, steps=6)
    fresh = HealthMonitor(r.monitor)
    fresh.load_state_dict(mon.state_dict())
    assert fresh.fired == mon.fired and torch.equal(fresh.probe, mon.probe)


def test_unknown_check_name_is_a_clear_error():
    from faultlens.errors import FaultlensError

    with pytest.raises(FaultlensError, match="Did you mean"):
        HealthMonitor(MonitorConfig(checks=("attention_entropi",)))
