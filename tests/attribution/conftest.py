"""Tiny-model fixtures for attribution tests (no downloads, milliseconds)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from faultlens.models.hf import HFAdapter
from faultlens.models.tiny import TOKENIZER_DIR, tiny_model

PROMPT = "Once upon a time, there was a little girl named Mia. One day, Mia met a boy named Ben. The girl's name was"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models are overhead-bound; two threads on shared cores are ~30x slower here."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.fixture()
def make_adapter(tokenizer):
    def make(family="llama", attn="eager", dtype=torch.float32, **kw):
        model = tiny_model(family, seed=0, attn_implementation=attn, **kw).to(dtype)
        return HFAdapter(model, tokenizer, name=f"tiny-{family}")

    return make


@pytest.fixture(scope="session")
def prompt():
    return PROMPT


@pytest.fixture(scope="session")
def pair():
    return single_token_pair


def single_token_pair(adapter, prompt=PROMPT):
    """Two single-token answers (by id) that follow `prompt`: its top-2 next tokens."""
    with torch.no_grad():
        ids = torch.tensor([adapter.encode(prompt)])
        logits = adapter.model(input_ids=ids).logits[0, -1]
    top = logits.topk(40).indices.tolist()
    toks = adapter.tokenizer.convert_ids_to_tokens(top)
    words = [t.replace("\u2581", " ") for t in toks if t.startswith("\u2581") and len(t) > 1]
    for a in words:
        for b in words:
            if a != b and len(adapter.encode_pair(prompt, a)[1]) == 1 and len(adapter.encode_pair(prompt, b)[1]) == 1:
                return a, b
    raise RuntimeError("no single-token answers found")
