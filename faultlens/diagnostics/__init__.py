"""Attention-health diagnostics: registered pure metrics (`metrics`, `position`), their
streaming counterparts over captured q/k (`stream`), and findings drawn from them."""

from faultlens.diagnostics.metrics import (
    SinkHeads, causal_visible, diagnostics, effective_rank, entropy_summary, lazy_cosine,
    max_attention_logit, normalized_entropy, sink_heads, sink_mass, sink_positions, token_uniformity,
)
from faultlens.diagnostics.position import head_redundancy, key_span_mass, position_profile

__all__ = [
    "SinkHeads", "causal_visible", "diagnostics", "effective_rank", "entropy_summary", "head_redundancy",
    "key_span_mass", "lazy_cosine", "max_attention_logit", "normalized_entropy", "position_profile",
    "sink_heads", "sink_mass", "sink_positions", "token_uniformity",
]
