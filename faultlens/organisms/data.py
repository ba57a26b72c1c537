"""Training data for the pathology organisms: small generators, each a named `Task`.

A task yields ``(x, y)`` int64 batches ``[B, T]``; ``y = -100`` marks positions without a
target. All data is made on the fly from a seeded generator or from text already on the
machine (the Python standard library's source), so nothing is downloaded.
"""

from __future__ import annotations

import functools
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from faultlens.registry import Registry

tasks: Registry[Callable[..., Task]] = Registry("organism task", "organism-tasks")


@dataclass
class Task:
    """A batch source. `sample(gen, B, T, split)` → ``(x, y)``, both ``[B, T]``."""

    name: str
    vocab_size: int
    sample: Callable[[torch.Generator, int, int, str], tuple[Tensor, Tensor]]
    unigram_entropy: float = float("nan")  # nats; the loss of a model that ignores context


@functools.lru_cache(maxsize=2)
def _stdlib_text(n_chars: int) -> str:
    """The first `n_chars` of the stdlib's *.py files (sorted, so identical on every machine
    with the same Python), restricted to printable ASCII plus newline."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for path in sorted(root.glob("*.py")):
        t = path.read_text(encoding="utf-8", errors="ignore")
        t = "".join(c for c in t if c == "\n" or 32 <= ord(c) < 127)
        parts.append(t)
        total += len(t)
        if total >= n_chars:
            break
    return "".join(parts)[:n_chars]


@tasks.register("stdlib_chars")
def stdlib_chars(n_chars: int = 1_000_000) -> Task:
    """Character-level LM on Python stdlib source, BOS (id 0) prepended to every window;
    last 10 % held out. Vocabulary: 0 = BOS, 1 = newline, 2.. = ASCII 32..126 (97 ids)."""
    text = _stdlib_text(n_chars)
    ids = torch.tensor([1 if c == "\n" else ord(c) - 30 for c in text], dtype=torch.long)
    cut = int(0.9 * len(ids))
    splits = {"train": ids[:cut], "val": ids[cut:]}
    counts = torch.bincount(ids, minlength=97).float()
    p = counts[counts > 0] / counts.sum()
    h = float(-(p * p.log()).sum())

    def sample(gen: torch.Generator, B: int, T: int, split: str = "train") -> tuple[Tensor, Tensor]:
        data = splits[split]
        start = torch.randint(0, len(data) - T, (B,), generator=gen)
        win = torch.stack([data[s: s + T] for s in start.tolist()])  # [B, T]
        x = torch.cat([torch.zeros(B, 1, dtype=torch.long), win[:, :-1]], dim=1)  # BOS + window
        return x, win

    return Task("stdlib_chars", 97, sample, h)


@tasks.register("prev_token")
def prev_token(vocab: int = 16) -> Task:
    """Random tokens; the target at position i is the token at i-1 (none at i=0). A model that
    cannot tell positions apart can only guess from the bag of tokens."""

    def sample(gen: torch.Generator, B: int, T: int, split: str = "train") -> tuple[Tensor, Tensor]:
        x = torch.randint(0, vocab, (B, T), generator=gen)  # [B, T]
        y = torch.full_like(x, -100)
        y[:, 1:] = x[:, :-1]
        return x, y

    return Task("prev_token", vocab, sample, float(torch.log(torch.tensor(float(vocab)))))


@tasks.register("bigram_backcopy")
def bigram_backcopy(vocab: int = 32, n_triggers: int = 4, seed: int = 0, branching: int = 3) -> Task:
    """Guo et al. (2024, "Active-dormant attention heads") Bigram-Backcopy: tokens follow a
    fixed random bigram chain, except that after a trigger token the next token copies the
    token before the trigger. A head is only needed at triggers, so elsewhere it must do
    nothing, which is what grows an attention sink on BOS (id 0).

    Args:
        branching: likely successors per token; ``vocab - 1`` makes non-trigger tokens
            uniform, so anything a head copies there only adds noise (a faster sink).
    """
    g = torch.Generator().manual_seed(seed)
    # Sparse bigram table: each token has `branching` likely successors (ids 1.. ; 0 is BOS).
    table = torch.full((vocab, vocab), -8.0)
    for a in range(vocab):
        table[a, 1 + torch.randperm(vocab - 1, generator=g)[:branching]] = 0.0
    probs = torch.softmax(table, -1)
    triggers = torch.arange(1, 1 + n_triggers)

    def sample(gen: torch.Generator, B: int, T: int, split: str = "train") -> tuple[Tensor, Tensor]:
        seq = torch.zeros(B, T + 1, dtype=torch.long)  # [B, T+1], position 0 is BOS
        seq[:, 1] = torch.randint(1, vocab, (B,), generator=gen)
        for t in range(2, T + 1):
            nxt = torch.multinomial(probs[seq[:, t - 1]], 1, generator=gen).squeeze(1)  # [B]
            is_trig = torch.isin(seq[:, t - 1], triggers)
            seq[:, t] = torch.where(is_trig, seq[:, t - 2], nxt)
        return seq[:, :-1], seq[:, 1:]

    return Task("bigram_backcopy", vocab, sample)


@tasks.register("cycle")
def cycle(vocab: int = 64, period: int = 8) -> Task:
    """Deterministic sequences: a random start, then +1 mod `period` within a random block of
    the vocabulary (each successor is a function of the current token). Zero-entropy targets let the cross-entropy push logits up without bound,
    which is where the output log-partition drifts unless z-loss pins it (PaLM)."""

    def sample(gen: torch.Generator, B: int, T: int, split: str = "train") -> tuple[Tensor, Tensor]:
        base = torch.randint(0, vocab // period, (B, 1), generator=gen) * period  # [B, 1]
        start = torch.randint(0, period, (B, 1), generator=gen)
        seq = base + (start + torch.arange(T + 1)[None]) % period  # [B, T+1]
        return seq[:, :-1], seq[:, 1:]

    return Task("cycle", vocab, sample, 0.0)
