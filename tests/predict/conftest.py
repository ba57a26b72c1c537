"""Fixtures for the predictor tests: synthetic stores with a planted failure signal, and one
small real scan of the shipped model (session-scoped: loaded and scanned once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faultlens.store import Store
from faultlens.types import Feature, Result


def _make_store(path, run_id: str, n_templates: int = 40, per_template: int = 5, planted: bool = True,
               seed: int = 0, model: str = "m", families: tuple[str, ...] = ("fam_a", "fam_b", "fam_c")) -> Store:
    """A run whose failures depend on one *internal* feature when `planted` (else on nothing).

    Black-box features (prompt.n_tokens, bb.topk_entropy, out.top2_margin) are pure noise, and
    attn.key_span_mass.L{0,1} carries the signal: fail when it is low (plus noise).
    """
    rng = np.random.default_rng(seed)
    st = Store(path)
    st.create_run(model, {"model": model}, run_id=run_id)
    results, feats = [], []
    for t in range(n_templates):
        fam = families[t % len(families)]
        for k in range(per_template):
            cid = f"{fam}/{t:03d}/v{k}"
            span = rng.normal()
            fail = (span + 0.5 * rng.normal() < -0.6) if planted else bool(rng.random() < 0.25)
            row = {"attn.key_span_mass.L0": span + 0.3 * rng.normal(), "attn.key_span_mass.L1": span + 0.3 * rng.normal(),
                   "resid.norm.L0": rng.normal(), "resid.norm.L1": rng.normal(),
                   "prompt.n_tokens": float(rng.integers(20, 200)), "bb.topk_entropy": rng.random(),
                   "out.top2_margin": rng.exponential()}
            feats += [Feature(run_id, cid, n, float(v)) for n, v in row.items()]
            results.append(Result(run_id, fam, cid, model, "value", k, "margin", -1.0 if fail else 1.0, not fail,
                                  {"pair": f"{fam}/{t:03d}"}))
    st.write(results=results, features=feats)
    return st


@pytest.fixture
def make_store():
    """Factory: `make_store(path, run_id, ...)` (see `_make_store`)."""
    return _make_store


@pytest.fixture
def planted_store(tmp_path):
    return _make_store(tmp_path / "planted.sqlite", "planted", planted=True)


@pytest.fixture
def clean_store(tmp_path):
    return _make_store(tmp_path / "clean.sqlite", "clean", planted=False)


@pytest.fixture(scope="session")
def adapter():
    from faultlens.models.hf import HFAdapter

    torch.set_num_threads(1)
    return HFAdapter.load("stories260k")


@pytest.fixture(scope="session")
def scanned(adapter, tmp_path_factory):
    """(store path, run id) of a real scan of three probe families (5 minimal sets each) with features."""
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig, run_scan

    path = tmp_path_factory.mktemp("scan") / "store.sqlite"
    st = Store(path)
    cfg = ScanConfig(model="stories260k", probes=("option_order", "surface", "sycophancy"),
                     probe=ProbeConfig(n_per_cell=4, seed=3))
    rep = run_scan(adapter, st, cfg, run_id="scan")
    return path, rep.run_id
