"""Plant a pathology in a tiny GPT-2's weights, assert faultlens finds it, and nothing on the clean twin."""

import torch

from faultlens.diagnostics.analyze import AnalyzeConfig, analyze
from faultlens.diagnostics.findings import findings_for
from tests.conftest import tiny_adapter

TEXTS = ["Once upon a time there was a little girl named Lily who liked to play in the park with her dog.",
         "Tom ran home. He was happy. His mom gave him a big red apple and he ate it all.",
         "The cat sat on the mat and looked at the bird in the tree."]
D, DH = 32, 8  # tiny GPT-2: n_embd 32, 4 heads of 8


def heads_of(findings, category):
    return sorted((f.evidence["layer"], f.evidence.get("head")) for f in findings if f.category == category)


def run(ad):
    return findings_for(analyze(ad, TEXTS, AnalyzeConfig()), "test")


def test_clean_models_raise_nothing(tokenizer):
    for family in ("gpt2", "mistral"):
        assert run(tiny_adapter(family, tokenizer, "sdpa")) == []


@torch.no_grad()
def test_planted_sink_and_uniform_heads(tokenizer):
    ad = tiny_adapter("gpt2", tokenizer, "sdpa")
    tr = ad.model.transformer
    # Residual dim 0 carries "I am position 0" and nothing else; no q/k reads it ...
    tr.wte.weight[:, 0] = 0
    tr.wpe.weight[:, 0] = 0
    tr.wpe.weight[0, 0] = 30.0
    for blk in tr.h:
        blk.attn.c_attn.weight[0, :2 * D] = 0
    # ... except L0.H0's key, and L0.H0's query is a constant: every query looks for position 0.
    attn0 = tr.h[0].attn.c_attn
    attn0.weight[:, 0:DH] = 0
    attn0.bias[0:DH] = 3.0
    attn0.weight[0, D:D + DH] = 3.0
    # L1.H2 gets q = 0: all logits equal, uniform attention.
    attn1 = tr.h[1].attn.c_attn
    attn1.weight[:, 2 * DH:3 * DH] = 0
    attn1.bias[2 * DH:3 * DH] = 0
    s = analyze(ad, TEXTS, AnalyzeConfig())
    f = findings_for(s, "test")
    assert heads_of(f, "attention sink") == [(0, 0)]
    assert [x.evidence["position"] for x in f if x.category == "attention sink"] == [0]
    conc = {(x.evidence["layer"], x.evidence["head"]): x.evidence["kind"] for x in f if x.category == "abnormal concentration"}
    assert conc == {(0, 0): "over-focus", (1, 2): "dispersion"}
    assert float(s.sink_share[0]) == 0.25 and float(s.sink_share[1]) == 0.0  # Gu metric: 1 of 4 heads


@torch.no_grad()
def test_planted_previous_token_head(tokenizer):
    """Positions coded one-hot in residual dims 1..8; L0.H1's key is the shifted code."""
    ad = tiny_adapter("gpt2", tokenizer, "sdpa", seed=1)
    tr = ad.model.transformer
    n = DH  # one query/key dim per position
    tr.wte.weight[:, 1:n + 1] = 0
    tr.wpe.weight[:, 1:n + 1] = 0
    tr.wpe.weight[torch.arange(n), torch.arange(1, n + 1)] = 40.0
    for blk in tr.h:
        blk.attn.c_attn.weight[1:n + 1, :2 * D] = 0
    c = tr.h[0].attn.c_attn
    c.weight[:, DH:2 * DH] = 0
    c.weight[:, D + DH:D + 2 * DH] = 0
    c.bias[DH:2 * DH] = 0
    c.bias[D + DH:D + 2 * DH] = 0
    # q_i = e_i, k_j = e_(j+1): q_i·k_j is large only for j = i - 1
    for p in range(n):
        c.weight[1 + p, DH + p] = 4.0
        if p + 1 < n:
            c.weight[1 + p, D + DH + p + 1] = 4.0
    texts = ["the cat sat on", "a dog ran"]
    assert all(len(ad.encode(t)) <= n for t in texts)
    s = analyze(ad, texts, AnalyzeConfig(skip_loss=False))
    assert float(s.entropy_mean[0, 1]) < 0.1  # over-focused ...
    assert float(s.relative[0, 1, 1]) > 0.9  # ... on the previous token
    f = findings_for(s, "test")
    assert (0, 1) in heads_of(f, "abnormal concentration")


@torch.no_grad()
def test_identical_heads_are_redundant(tokenizer):
    ad = tiny_adapter("gpt2", tokenizer, "sdpa")
    c = ad.model.transformer.h[1].attn.c_attn
    for part in (0, D):  # q and k of every head = head 0's
        for h in range(1, 4):
            c.weight[:, part + h * DH:part + (h + 1) * DH] = c.weight[:, part:part + DH]
            c.bias[part + h * DH:part + (h + 1) * DH] = c.bias[part:part + DH]
    f = run(ad)
    assert heads_of(f, "head redundancy") == [(1, None)]
    assert [x for x in f if x.category != "head redundancy"] == []


@torch.no_grad()
def test_zero_attention_block_is_lazy(tokenizer):
    ad = tiny_adapter("gpt2", tokenizer, "sdpa")
    proj = ad.model.transformer.h[1].attn.c_proj
    proj.weight.zero_()
    proj.bias.zero_()
    s = analyze(ad, TEXTS, AnalyzeConfig())
    assert abs(float(s.skip_loss_delta[1])) < 1e-5 and float(s.lazy_cos[1]) > 0.9999
    f = findings_for(s, "test")
    assert heads_of(f, "lazy layer") == [(1, None)]
    assert [x for x in f if x.category != "lazy layer"] == []
