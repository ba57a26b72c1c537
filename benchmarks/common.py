"""Shared set-up for benchmarks: peer-shaped random models and a local tokenizer, built offline.

The shapes follow ../shared/notes/peers.md so numbers are comparable with the anchors measured
there. Nothing is downloaded: the tokenizer is a byte-level BPE trained here on Python's own
standard-library sources.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import torch

CACHE = Path(os.environ.get("FAULTLENS_BENCH_CACHE", Path.home() / ".cache" / "faultlens-bench"))


def stdlib_texts(limit: int = 400) -> list[str]:
    src = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in src.glob("*.py"))[:limit]
    return [p.read_text(errors="ignore") for p in files]


def bpe_tokenizer(vocab: int = 8000):
    """A GPT2TokenizerFast over a BPE trained on stdlib sources (cached on disk)."""
    from transformers import GPT2TokenizerFast

    out = CACHE / f"tok{vocab}"
    if not (out / "tokenizer.json").exists():
        from tokenizers import ByteLevelBPETokenizer

        tok = ByteLevelBPETokenizer()
        tok.train_from_iterator(stdlib_texts(), vocab_size=vocab, special_tokens=["<|endoftext|>"])
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(out / "tokenizer.json"))
    t = GPT2TokenizerFast(tokenizer_file=str(out / "tokenizer.json"), eos_token="<|endoftext|>",
                          bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    t.pad_token = t.eos_token
    return t


def llama_tiny_shape_dir() -> Path:
    """peers.md's `llama-tiny-shape`: 4 layers, d 256, 8 heads / 2 KV, vocab 32000, 19.2 M params."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = CACHE / "llama-tiny-shape"
    if not (out / "model.safetensors").exists():
        torch.manual_seed(0)
        cfg = LlamaConfig(num_hidden_layers=4, hidden_size=256, intermediate_size=688, num_attention_heads=8,
                          num_key_value_heads=2, vocab_size=32000, tie_word_embeddings=False, max_position_embeddings=2048)
        LlamaForCausalLM(cfg).save_pretrained(out)
        bpe_tokenizer().save_pretrained(out)
    return out


def mc_requests(tokenizer_texts: list[str], n_prompts: int, seed: int = 0) -> list[tuple[str, str]]:
    """Multiple-choice shaped (context, continuation) pairs: 4 continuations per ~60-token context,
    about half one token and half two tokens long, as in peers.md Job 1."""
    import random

    rng = random.Random(seed)
    words = " ".join(tokenizer_texts).split()
    reqs = []
    for _ in range(n_prompts):
        start = rng.randrange(0, len(words) - 60)
        ctx = "Question: " + " ".join(words[start:start + 38]) + "\nAnswer:"
        for j in range(4):
            k = rng.randrange(0, len(words) - 2)
            cont = " " + (words[k] if j % 2 == 0 else words[k] + " " + words[k + 1])
            reqs.append((ctx, cont))
    return reqs
