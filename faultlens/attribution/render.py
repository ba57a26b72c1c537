"""Rich terminal rendering of an `Explanation`: tokens coloured by relevance plus a faithfulness line."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.text import Text


def coloured_tokens(expl, window: int | None = None) -> Text:
    """Tokens with red = pushes towards the foil, blue = towards the target (intensity ∝ |R|).

    Args:
        window: show only the last `window` tokens (plus the top-5 positions) for long prompts.
    """
    rel = np.asarray(expl.relevance, dtype=float)
    scale = float(np.abs(rel).max()) or 1.0
    show = set(range(len(rel)))
    if window is not None and len(rel) > window:
        show = set(range(len(rel) - window, len(rel))) | {p for p, _, _ in expl.top_tokens(5)}
    text, prev = Text(), -1
    for i, tok in enumerate(expl.tokens):
        if i not in show:
            continue
        if prev != -1 and i != prev + 1:
            text.append(" … ", style="dim")
        a = min(1.0, abs(rel[i]) / scale)
        level = int(255 * (1 - a))
        colour = f"rgb(255,{level},{level})" if rel[i] > 0 else f"rgb({level},{level},255)"
        text.append(tok, style=f"black on {colour}")
        prev = i
    return text


def faithfulness_line(faith: dict) -> str:
    if not faith:
        return "faithfulness: not computed"
    return (f"faithfulness: deletion-AOPC {faith['deletion_aopc']:+.3f} (random {faith['random_deletion_aopc']:+.3f}), "
            f"insertion-AOPC {faith['insertion_aopc']:+.3f} (random {faith['random_insertion_aopc']:+.3f})")


def render_explanation(console: Console, expl, window: int | None = None) -> None:
    """Print method, attributed value, coloured tokens, top tokens and faithfulness."""
    console.print(f"  {expl.method} on {expl.objective} = {expl.logit_diff:+.3f} "
                  f"(relevance sum {float(np.sum(expl.relevance)) + expl.answer_prefix_relevance:+.3f}; "
                  f"{expl.seconds * 1000:.0f} ms)")
    console.print(Text("  ") + coloured_tokens(expl, window))
    tops = ", ".join(f"{t!r}@{p} {r:+.2f}" for p, t, r in expl.top_tokens(5))
    console.print(f"  top → foil: {tops}")
    console.print(f"  {faithfulness_line(expl.faithfulness)}")
