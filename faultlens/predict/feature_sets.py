"""Named feature sets: which stored features a predictor may use.

* ``all``: every per-case feature a white-box run stored.
* ``blackbox``: what an API model exposes: prompt lengths and statistics of the top-20 output
  log-probabilities (``bb.*``, the top-2 margin). The comparison predictor for "do internals add
  anything?".
* ``internal``: internals only (attention, residual stream, logit lens), no output or input stats.
* ``serve``: everything computable from a bare prompt at serve time, i.e. ``all`` minus features
  that need the probe's key-fact span (``key.*``, ``attn.key_span_mass*``). The guard needs this.
"""

from __future__ import annotations

from typing import Callable, Sequence

from faultlens.registry import Registry

Selector = Callable[[Sequence[str]], list[str]]
feature_sets: Registry[Selector] = Registry("feature set")

BLACK_BOX = ("prompt.n_tokens", "prompt.n_chars", "bb.topk_entropy", "bb.top1_logprob", "out.top2_margin")
INTERNAL_PREFIXES = ("attn.", "resid.", "lens.", "attrib.")
NEEDS_SPAN = ("key.", "attn.key_span_mass")


@feature_sets.register("all")
def _all(cols: Sequence[str]) -> list[str]:
    """Every per-case feature stored by the run."""
    return sorted(cols)


@feature_sets.register("blackbox")
def _blackbox(cols: Sequence[str]) -> list[str]:
    """Prompt lengths and top-20 output log-prob statistics (what an API returns)."""
    return [c for c in BLACK_BOX if c in cols]


@feature_sets.register("internal")
def _internal(cols: Sequence[str]) -> list[str]:
    """Attention, residual-stream and logit-lens features only."""
    return sorted(c for c in cols if c.startswith(INTERNAL_PREFIXES))


@feature_sets.register("serve")
def _serve(cols: Sequence[str]) -> list[str]:
    """All features computable from a bare prompt (no key-fact span)."""
    return sorted(c for c in cols if not c.startswith(NEEDS_SPAN))


def select(name: str, cols: Sequence[str]) -> list[str]:
    """Columns of feature set `name` among `cols` (unknown names fail with a suggestion)."""
    return feature_sets.get(name)(list(cols))
