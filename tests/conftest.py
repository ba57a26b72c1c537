"""Shared fixtures: seeded tiny models of each family, the shipped model, a temp store."""

from __future__ import annotations


import pytest
import torch

# Tiny test models run faster on one thread (and leave the other core to a parallel process).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from faultlens.models.tiny import TOKENIZER_DIR

    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.fixture(scope="session")
def stories():
    """The shipped TinyStories model (loaded once per session)."""
    from faultlens.models.hf import HFAdapter

    return HFAdapter.load("stories260k")


@pytest.fixture
def store(tmp_path):
    from faultlens.store import Store

    return Store(tmp_path / "store.sqlite")


def tiny_adapter(family: str, tokenizer, attn: str = "eager", seed: int = 0):
    from faultlens.models.hf import HFAdapter
    from faultlens.models.tiny import tiny_model

    return HFAdapter(tiny_model(family, seed=seed, attn_implementation=attn), tokenizer, name=f"tiny-{family}")
