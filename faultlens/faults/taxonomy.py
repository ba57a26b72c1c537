"""The ABNN attention-fault taxonomy: 7 categories, 25 root causes, and the mutation operators.

Source: Jahan et al., "Why Attention Fails: A Taxonomy of Faults in Attention-Based Neural
Networks" (ICSE 2026, arXiv 2508.04925), as rendered by the same authors in DEFault++
("Hierarchical Fault Detection and Diagnosis for Transformer Architectures", fig. fault taxonomy;
mutation operators from its Table 18, the DEForm operators). Operators tagged ENG are our own
engineering additions (common bugs from the taxonomy note's §3), not from the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES: dict[str, tuple[str, ...]] = {
    "Attention Masking": ("Mask Generation", "Dynamic Mask", "Mask Application"),
    "QKV Projection": ("Dynamic Parameter Registration", "Dimension", "Head Interaction", "Parameter Initialization"),
    "Attention Kernel": ("Feature Constraints", "Silent Fallback", "Numerical Precision", "Kernel Memory",
                         "Hardware Incompatibility"),
    "Positional Encoding": ("Indexing", "Interpolation", "Relative Position"),
    "Attention Score": ("Implementation", "Normalization", "Precision Handling"),
    "KV Cache": ("Cache Invalidation", "Update Synchronization", "Memory Layout", "Cache-Position",
                 "Distributed Synchronization"),
    "Attention Variant": ("Dynamic Dispatch", "Variant Configuration"),
}


def require(category: str, root_cause: str) -> None:
    """Fail loudly at import time if a check or injector names an unknown (category, root cause)."""
    if root_cause not in CATEGORIES.get(category, ()):
        raise ValueError(f"({category!r}, {root_cause!r}) is not in the ABNN taxonomy")


@dataclass(frozen=True)
class Operator:
    op: str
    category: str
    root_cause: str
    mutation: str
    source: str  # "T18" (DEFault++ Table 18) or "ENG"


OPERATORS: tuple[Operator, ...] = (
    Operator("MZM", "Attention Masking", "Mask Application", "replace the attention mask with an all-zero (attend-all) mask", "T18"),
    Operator("MIM", "Attention Masking", "Mask Application", "invert mask semantics, same shape and dtype", "T18"),
    Operator("MRM", "Attention Masking", "Mask Generation", "misalign the mask axes (keys/queries swapped, or batch rows rolled)", "T18"),
    Operator("MCB", "Attention Masking", "Dynamic Mask", "causal-mask break: the next (future) key becomes visible", "T18"),
    Operator("MAS", "Attention Masking", "Mask Application", "mask applied after softmax (rows no longer sum to 1)", "ENG"),
    Operator("QZQ", "QKV Projection", "Parameter Initialization", "zero the Q projection weights of layer 0", "T18"),
    Operator("QZK", "QKV Projection", "Parameter Initialization", "zero the K projection weights of layer 0", "T18"),
    Operator("QZV", "QKV Projection", "Parameter Initialization", "zero the V projection weights of layer 0", "T18"),
    Operator("QSW", "QKV Projection", "Head Interaction", "swap the Q and K projection outputs", "T18"),
    Operator("QTH", "QKV Projection", "Head Interaction", "tie head 1's Q/K/V weights to head 0's", "T18"),
    Operator("QFG", "QKV Projection", "Dynamic Parameter Registration", "freeze Q/K/V gradients (requires_grad=False)", "T18"),
    Operator("QHD", "QKV Projection", "Dimension", "repartition (heads, d_head) to (H/2, 2 d_head)", "T18"),
    Operator("QNR", "QKV Projection", "Dynamic Parameter Registration", "Q weight held as a plain tensor, not a registered parameter", "ENG"),
    Operator("QRS", "QKV Projection", "Dimension", "head split with view(B, H, T, dh) and no transpose", "ENG"),
    Operator("SDS", "Attention Score", "Normalization", "drop the 1/sqrt(d_k) scaling", "T18"),
    Operator("SPD", "Attention Score", "Implementation", "dropout applied to scores before softmax (active in eval)", "T18"),
    Operator("SUC", "Attention Score", "Precision Handling", "unsafe fp16 cast of the score computation", "T18"),
    Operator("SWD", "Attention Score", "Implementation", "softmax over the query axis instead of the key axis", "ENG"),
    Operator("POE", "Positional Encoding", "Indexing", "omit (zero) the positional encoding", "T18"),
    Operator("PSI", "Positional Encoding", "Relative Position", "shift position indices by delta in cached decoding", "T18"),
    Operator("PTL", "Positional Encoding", "Interpolation", "truncate positional support: positions clamp at a cutoff", "T18"),
    Operator("KSB", "Attention Kernel", "Silent Fallback", "force the non-optimised math backend", "T18"),
    Operator("KMD", "Attention Kernel", "Feature Constraints", "kernel dropout p differs from the module's (p>0 in eval)", "T18"),
    Operator("KFT", "Attention Kernel", "Hardware Incompatibility", "dtype mismatch: the kernel silently runs in fp16", "T18"),
    Operator("KRP", "Attention Kernel", "Numerical Precision", "reduced-precision (bf16) accumulation in the kernel", "T18"),
    Operator("KMC", "Attention Kernel", "Kernel Memory", "chunked memory-saving path merging key chunks wrongly", "T18"),
    Operator("VSH", "Attention Variant", "Variant Configuration", "single effective head (all heads routed to head 0)", "T18"),
    Operator("VEC", "Attention Variant", "Dynamic Dispatch", "causal mask applied in an encoder layer", "T18"),
    Operator("VSW", "Attention Variant", "Variant Configuration", "sliding window on the wrong layer (predicate reversed)", "ENG"),
    Operator("VGR", "Attention Variant", "Variant Configuration", "GQA heads expanded with repeat instead of repeat_interleave", "ENG"),
    Operator("CST", "KV Cache", "Cache Invalidation", "stale cached K/V in layer 0 (updates after prefill not seen)", "T18"),
    Operator("CDU", "KV Cache", "Update Synchronization", "current step's K/V not written to the cache before attending", "T18"),
    Operator("COB", "KV Cache", "Cache-Position", "off-by-one cache write index (overwrites the last entry)", "T18"),
    Operator("CTR", "KV Cache", "Memory Layout", "cache truncated to a maximum length", "T18"),
    Operator("CLK", "KV Cache", "Distributed Synchronization", "cross-request leak: a cache slot keeps the previous request's K/V", "T18"),
)

OPS = {o.op: o for o in OPERATORS}
for _o in OPERATORS:
    require(_o.category, _o.root_cause)
