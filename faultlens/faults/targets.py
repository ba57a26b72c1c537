"""Clean things to check: a tiny BERT and a hand-written reference attention module.

`tiny_bert` complements `faultlens.models.tiny` (decoders only) with an encoder; `ReferenceAttention`
is the textbook multi-head attention (Vaswani et al. 2017, eq. 1; RoPE of Su et al. 2021 optional;
grouped KV heads of Ainslie et al. 2023 optional) written the way `faultlens check` expects a user
module: ``forward(x [B, T, D], attention_mask [B, T] | None) -> [B, T, D]``. Both are the clean
twins the checks must pass and the injectors plant faults into.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 512


def tiny_bert(seed: int = 0, masked_lm: bool = True, **config_kw) -> nn.Module:
    """A seeded random 2-layer BERT (d 32, 4 heads) in eval mode, SDPA attention."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=0, **config_kw)
    torch.manual_seed(seed)
    model = (BertForMaskedLM if masked_lm else BertModel)(cfg, **({} if masked_lm else {"add_pooling_layer": False}))
    model.set_attn_implementation("sdpa")
    with torch.no_grad():  # wider than the 0.02 init, so attention is far from uniform (as in models.tiny)
        g = torch.Generator().manual_seed(seed)
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


class Rotary(nn.Module):
    """RoPE tables: ``forward(positions [T]) -> (cos, sin)`` each ``[T, dh]`` (rotate-half convention)."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", theta ** (-torch.arange(0, head_dim, 2).float() / head_dim), persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = positions.float()[:, None] * self.inv_freq[None]  # [T, dh/2]
        emb = torch.cat([f, f], dim=-1)  # [T, dh]
        return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


@dataclass(frozen=True)
class ReferenceConfig:
    d_model: int = 32
    num_heads: int = 4
    num_kv_heads: int = 4
    is_causal: bool = True
    rope: bool = True


class ReferenceAttention(nn.Module):
    """Textbook multi-head self-attention over SDPA.

    Call convention: ``forward(x [B, T, D], attention_mask [B, T] (1 = real token) | None) -> [B, T, D]``.
    Declares ``is_causal``, ``positional`` and head counts so `faultlens check` knows what to expect.
    """

    def __init__(self, cfg: ReferenceConfig = ReferenceConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_heads, self.num_kv_heads = cfg.num_heads, cfg.num_kv_heads
        self.head_dim = cfg.d_model // cfg.num_heads
        self.d_model = cfg.d_model
        self.is_causal, self.positional = cfg.is_causal, cfg.rope
        self.q_proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.k_proj = nn.Linear(cfg.d_model, self.head_dim * cfg.num_kv_heads)
        self.v_proj = nn.Linear(cfg.d_model, self.head_dim * cfg.num_kv_heads)
        self.o_proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.rotary = Rotary(self.head_dim) if cfg.rope else None

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)  # [B, H, T, dh]
        k = self.k_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)  # [B, Hkv, T, dh]
        v = self.v_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)
        if self.rotary is not None:
            cos, sin = self.rotary(torch.arange(T, device=x.device))
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        mask, causal = None, self.is_causal
        if attention_mask is not None:
            mask = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, T] keys
            if causal:
                mask = mask & torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # [B, 1, T, T]
                causal = False
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                             enable_gqa=self.num_kv_heads != self.num_heads)  # [B, H, T, dh]
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))


def reference_attention(seed: int = 0, **kw) -> ReferenceAttention:
    """A seeded `ReferenceAttention` in eval mode; kwargs override `ReferenceConfig`."""
    torch.manual_seed(seed)
    return ReferenceAttention(ReferenceConfig(**kw)).eval()


def reference_causal() -> ReferenceAttention:
    """Factory for `faultlens check file.py:factory`: causal, RoPE, 4 heads."""
    return reference_attention(0)


def reference_encoder() -> ReferenceAttention:
    """Factory: bidirectional, no positional encoding (permutation-equivariant), 4 heads."""
    return reference_attention(0, is_causal=False, rope=False)


def reference_gqa() -> ReferenceAttention:
    """Factory: causal, RoPE, 4 query heads sharing 2 KV heads."""
    return reference_attention(0, num_kv_heads=2)
