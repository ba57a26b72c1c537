"""The one "absent token" used everywhere a token is removed: deletion / insertion curves AND the
Integrated Gradients baseline, so every method is scored against the same notion of absence.

Default "eos", the all-EOS baseline of the peer set-up (shared/notes/peers.md, Job 3). On the
shipped stories260k, UNK (id 0) was the previous default; it never occurs in training text
(byte fallback), so its embedding is an untrained outlier and "masking" with it injects a
signal of its own (docs/attribution.md has the numbers under each choice).
"""

from __future__ import annotations

from faultlens.errors import FaultlensError

MASKS = ("eos", "unk", "pad", "zero")


def mask_token_id(tokenizer, mask: str = "eos") -> int | None:
    """Token id for `mask` ("eos" | "unk" | "pad"), or None for "zero" (a zero embedding).

    Raises:
        FaultlensError: unknown kind, or the tokenizer has no such token.
    """
    if mask not in MASKS:
        raise FaultlensError(f"Unknown mask {mask!r}; use one of {', '.join(MASKS)}.")
    if mask == "zero":
        return None
    v = getattr(tokenizer, f"{mask}_token_id", None)
    if v is None:
        raise FaultlensError(f"The tokenizer has no {mask} token; choose another mask ({', '.join(MASKS)}).")
    return int(v)
