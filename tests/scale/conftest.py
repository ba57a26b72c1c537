"""Fixtures for scale-out tests: two tiny saved models of different families, and the scan they run."""

from __future__ import annotations

import pytest

from faultlens.models.tiny import save_tiny


@pytest.fixture(scope="session")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale-models")
    return [save_tiny("llama", root / "tiny-llama"), save_tiny("gpt2", root / "tiny-gpt2", seed=1)]
