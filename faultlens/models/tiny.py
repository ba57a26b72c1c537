"""Seeded random tiny models built from real Hugging Face configs, for tests.

Zero downloads, milliseconds to build. All share the shipped stories260k tokenizer (vocab 512),
so any of them can go through `HFAdapter` with real text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from faultlens.models.zoo import ZOO_DIR
from faultlens.registry import Registry

VOCAB = 512
TOKENIZER_DIR = ZOO_DIR / "stories260k"

# Defaults for the decoder families; any key can be overridden through tiny_model(**config_kw).
_DECODER = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=256, bos_token_id=1, eos_token_id=2)

tiny_families: Registry[Callable[..., PretrainedConfig]] = Registry("tiny family", "tiny-families")


@tiny_families.register("gpt2")
def _gpt2(**kw) -> PretrainedConfig:
    """GPT-2: learned positions, LayerNorm, fused c_attn (Conv1D)."""
    from transformers import GPT2Config

    return GPT2Config(**{**dict(vocab_size=VOCAB, n_positions=256, n_embd=32, n_layer=2, n_head=4,
                                bos_token_id=1, eos_token_id=2), **kw})


@tiny_families.register("llama")
def _llama(**kw) -> PretrainedConfig:
    """Llama: RoPE, RMSNorm, SwiGLU, grouped-query attention."""
    from transformers import LlamaConfig

    return LlamaConfig(**{**_DECODER, "num_key_value_heads": 2, **kw})


@tiny_families.register("mistral")
def _mistral(**kw) -> PretrainedConfig:
    """Mistral: Llama plus a sliding attention window (8 here, so tests cross it)."""
    from transformers import MistralConfig

    kw.setdefault("sliding_window", 8)
    return MistralConfig(**{**_DECODER, "num_key_value_heads": 2, **kw})


@tiny_families.register("qwen2")
def _qwen2(**kw) -> PretrainedConfig:
    """Qwen2: RoPE with q/k/v biases, GQA."""
    from transformers import Qwen2Config

    return Qwen2Config(**{**_DECODER, "num_key_value_heads": 2, **kw})


@tiny_families.register("gpt_neox")
def _gpt_neox(**kw) -> PretrainedConfig:
    """GPT-NeoX: partial rotary, parallel residual, fused query_key_value."""
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(**{**_DECODER, "rotary_pct": 0.5, **kw})


FAMILIES = tiny_families.names()


def tiny_model(family: str = "llama", seed: int = 0, attn_implementation: str = "eager", **config_kw) -> torch.nn.Module:
    """A seeded random causal LM of `family` in eval mode.

    Args:
        family: one of `FAMILIES`.
        seed: torch seed for the weights.
        attn_implementation: "eager" or "sdpa".
        **config_kw: overrides for the config (e.g. num_hidden_layers=3).
    """
    cfg = tiny_families.get(family)(**config_kw)
    cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn_implementation)
    # Random init with std 0.02 gives near-uniform attention; a larger spread gives real patterns.
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def save_tiny(family: str, out: str | Path, seed: int = 0, **config_kw) -> Path:
    """Write a tiny model plus the shared tokenizer as a loadable HF directory."""
    from transformers import AutoTokenizer

    out = Path(out)
    model = tiny_model(family, seed=seed, **config_kw)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(TOKENIZER_DIR).save_pretrained(out)
    return out
