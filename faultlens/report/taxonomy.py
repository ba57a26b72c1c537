"""How the report groups findings: the seed's five fault families.

The seed groups failures as attention faults, learning biases, reasoning faults, training
faults and implementation faults (the last holds the ABNN attention-fault categories of Jahan
et al., ICSE 2026). A finding's `category` decides its family when we know the name; otherwise
its `source` prefix does (a monitor finding is a training fault, a fault check an
implementation fault, a diagnostic an attention fault).
"""

from __future__ import annotations

FAMILIES = ["attention faults", "learning biases", "reasoning faults", "training faults",
            "implementation faults", "other"]

_BY_CATEGORY = {
    "attention faults": ["abnormal concentration", "attention sink", "rank collapse", "lazy layer",
                         "entropy collapse", "over-smoothing", "oversmoothing", "attention dispersion",
                         "dispersion", "head redundancy", "dead head"],
    "learning biases": ["position bias", "frequency bias", "option-order bias", "order bias", "recency bias",
                        "primacy bias", "lost in the middle", "token bias", "label bias", "majority bias",
                        "shortcut", "spurious", "length bias", "selection bias"],
    "reasoning faults": ["negation", "counting", "compositional", "multi-hop", "multihop", "arithmetic",
                         "reasoning", "reversal", "logic", "copying", "induction"],
    "training faults": ["loss spike", "divergence", "gradient", "logit growth", "exploding", "vanishing",
                        "dead neuron", "learning rate", "overfitting", "instability", "training"],
    "implementation faults": ["attention masking", "masking", "qkv projection", "attention kernel", "kernel",
                              "positional encoding", "attention score", "score computation", "kv cache",
                              "attention variant", "causality", "mask"],
}
_BY_SOURCE = {"diagnostic": "attention faults", "monitor": "training faults", "check": "implementation faults",
              "probe": "learning biases"}
SEVERITY_RANK = {"error": 0, "critical": 0, "warning": 1, "warn": 1, "info": 2}


def family_of(category: str, source: str) -> str:
    """The fault family a finding belongs to (exact name, then keyword, then source)."""
    cat = (category or "").strip().lower()
    for family, names in _BY_CATEGORY.items():
        if cat in names:
            return family
    for family, names in _BY_CATEGORY.items():
        if any(n in cat for n in names):
            return family
    return _BY_SOURCE.get((source or "").split(":", 1)[0], "other")


def anchor_of(source: str) -> str:
    """The section (element id suffix) that holds a finding's evidence."""
    kind, _, name = (source or "").partition(":")
    return {"probe": f"probe-{name}" if name else "probes", "diagnostic": "attention",
            "monitor": "monitor", "check": "checks", "predictor": "predictor"}.get(kind, "summary")
