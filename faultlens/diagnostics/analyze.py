"""Attention health of a model over a set of texts: per layer × head summaries and per-case
features, built from `collect` (one streamed forward per batch) plus the block-skip loss test.

`analyze` is what the CLI and the demo call; `attention_features` is what the probe runner
calls per case (names follow the store conventions: ``attn.entropy.mean.L{i}``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from faultlens.capture import attention_modules, decoder_layers
from faultlens.diagnostics import metrics as M
from faultlens.diagnostics.collect import CollectConfig, collect, key_spans_for
from faultlens.errors import FaultlensError


@dataclass(frozen=True)
class AnalyzeConfig:
    """Run-level attention analysis.

    Attributes:
        collect: what each forward computes (layers, stream/eager, block size).
        batch_tokens: texts per forward are grouped under this many (padded) tokens.
        entropy_low: a query row below this normalised entropy counts as over-focused.
        sink_threshold: Gu et al.'s epsilon (0.3).
        min_viewers: a sink position must be seen by at least this many queries (and by half
            of the text's queries).
            Sink detection uses Gu's alpha minus the alpha uniform attention would give, so
            short texts and sliding windows (where early keys are seen by few, short rows) do not
            look like sinks.
        skip_loss: also measure the loss increase when each attention block is skipped.
    """

    collect: CollectConfig = CollectConfig()
    batch_tokens: int = 8192
    entropy_low: float = 0.1
    sink_threshold: float = 0.3
    min_viewers: int = 8
    skip_loss: bool = True


@dataclass
class AttentionSummary:
    """Per layer × head results over all texts (layers in `layers` order)."""

    layers: list[int]
    heads: int
    entropy_mean: Tensor  # [L, H]
    entropy_min: Tensor  # [L, H]
    entropy_frac_low: Tensor  # [L, H]
    sink_mass: Tensor  # [L, H] Gu alpha at each text's first token, mean over texts
    sink_excess: Tensor | None = None  # [L, H] that alpha minus what uniform attention would give
    sink_positions: dict = field(default_factory=dict)  # (layer, head) -> {pos: (share of texts, n texts)}
    sink_share: Tensor | None = None  # [L] Gu Sink^eps: share of heads with alpha > eps
    max_logit: Tensor | None = None  # [L, H]
    redundancy: Tensor | None = None  # [L, H, H]
    relative: Tensor | None = None  # [L, H, D] mean mass by distance
    absolute: Tensor | None = None  # [L, H, P] mean mass by key position
    token_uniformity: Tensor | None = None  # [L]
    effective_rank: Tensor | None = None  # [L]
    lazy_cos: Tensor | None = None  # [L]
    skip_loss_delta: Tensor | None = None  # [L]
    base_loss: float | None = None
    n_texts: int = 0

    def to_json(self) -> dict:
        """The `attention/summary` artifact (store conventions)."""
        f = lambda t: None if t is None else torch.nan_to_num(t.float(), nan=-1.0).tolist()  # noqa: E731
        return {
            "layers": len(self.layers), "layer_ids": self.layers, "heads": self.heads,
            "entropy": f(self.entropy_mean), "entropy_min": f(self.entropy_min), "entropy_frac_low": f(self.entropy_frac_low),
            "sink_mass": f(self.sink_mass), "sink_excess": f(self.sink_excess), "sink_share": f(self.sink_share), "max_logit": f(self.max_logit),
            "redundancy": f(self.redundancy), "token_uniformity": f(self.token_uniformity),
            "effective_rank": f(self.effective_rank), "lazy_cos": f(self.lazy_cos),
            "skip_loss_delta": f(self.skip_loss_delta), "base_loss": self.base_loss,
            "sink_positions": {f"L{l}.H{h}": v for (l, h), v in self.sink_positions.items()},
            "position_profile": {"relative": f(self.relative), "absolute": f(self.absolute),
                                 "note": "mean attention mass by distance / by key position from the first token; -1 = unseen"},
        }


def batches(adapter, texts: Sequence[str], budget: int) -> list[list[int]]:
    """Index groups of texts whose padded length × rows stays under `budget` tokens."""
    lens = [len(adapter.encode(t)) for t in texts]
    out, cur, width = [], [], 0
    for i in sorted(range(len(texts)), key=lambda i: -lens[i]):
        w = max(width, lens[i])
        if cur and w * (len(cur) + 1) > budget:
            out.append(cur)
            cur, w = [], lens[i]
        cur.append(i)
        width = w
    return out + ([cur] if cur else [])


def _pad_stack(rows: list[Tensor]) -> Tensor:
    """Stack ``[H, n_k]`` rows of different n into ``[N, H, max n]`` with NaN padding."""
    n = max(r.shape[-1] for r in rows)
    return torch.stack([torch.nn.functional.pad(r, (0, n - r.shape[-1]), value=float("nan")) for r in rows])


def per_text(adapter, texts: Sequence[str], cfg: CollectConfig, budget: int = 8192,
             char_spans: Sequence | None = None) -> list[dict[int, dict[str, Tensor]]]:
    """`collect` over texts in batches; returns one ``{layer: stats}`` per text, unpadded."""
    if not texts:
        raise FaultlensError("No texts to analyse; pass --text or a --file with at least one line.")
    res: list = [None] * len(texts)
    for idx in batches(adapter, texts, budget):
        sub = [texts[i] for i in idx]
        batch = adapter.tokenize_batch(sub)
        spans = key_spans_for(adapter, sub, [char_spans[i] for i in idx]) if char_spans else None
        stats = collect(adapter, batch, cfg, spans)
        lens = batch["attention_mask"].sum(-1).tolist()
        for r, i in enumerate(idx):
            n = int(lens[r])
            one = {}
            for layer, d in stats.items():
                e = {}
                for k, v in d.items():
                    if k in ("entropy", "span_mass", "sink_mass", "relative", "sink_baseline"):
                        e[k] = v[r, :, :n]  # right padding: the real tokens come first
                    elif k == "n_visible":
                        continue
                    else:
                        e[k] = v[r]
                one[layer] = e
            res[i] = one
    return res


@torch.inference_mode()
def skip_loss_increase(adapter, texts: Sequence[str], layers: Sequence[int] | None = None,
                       budget: int = 8192) -> tuple[float, Tensor]:
    """He et al. (2024) ground truth for lazy layers: next-token loss with each attention block's
    output zeroed, minus the clean loss.

    A temporary forward hook replaces the attention module's output by zeros and is removed in
    ``finally``; the model is never changed. Returns (clean loss, ``[L]`` increases in nats).
    """
    attn = attention_modules(adapter.model)
    layers = list(range(len(attn))) if layers is None else list(layers)

    def loss() -> float:
        tot, n = 0.0, 0
        for idx in batches(adapter, texts, budget):
            b = adapter.tokenize_batch([texts[i] for i in idx])
            labels = b["input_ids"].masked_fill(b["attention_mask"] == 0, -100)
            out = adapter.model(**b, labels=labels, use_cache=False)
            k = int((labels[:, 1:] != -100).sum())
            tot, n = tot + float(out.loss) * k, n + k
        return tot / max(n, 1)

    def zero(_mod, _inp, output):
        if isinstance(output, tuple):
            return (torch.zeros_like(output[0]),) + tuple(output[1:])
        return torch.zeros_like(output)

    base = loss()
    deltas = []
    for i in layers:
        h = attn[i].register_forward_hook(zero)
        try:
            deltas.append(loss() - base)
        finally:
            h.remove()
    return base, torch.tensor(deltas)


def analyze(adapter, texts: Sequence[str], cfg: AnalyzeConfig = AnalyzeConfig()) -> AttentionSummary:
    """Per layer × head attention health over `texts` (see `AttentionSummary`)."""
    stats = per_text(adapter, texts, cfg.collect, cfg.batch_tokens)
    layers = sorted(stats[0])
    H = stats[0][layers[0]]["entropy"].shape[0]
    excess = []
    ent_mean, ent_min, ent_low, sink, mxl, red, rel, absm = [], [], [], [], [], [], [], []
    tu, er, lz, positions = [], [], [], {}
    for layer in layers:
        rows = [s[layer] for s in stats]
        ent = torch.cat([r["entropy"] for r in rows], dim=-1)[None]  # [1, H, N queries]
        es = M.entropy_summary(ent, cfg.entropy_low)
        ent_mean.append(es["mean"]), ent_min.append(es["min"]), ent_low.append(es["frac_low"])
        mxl.append(torch.stack([r["max_logit"] for r in rows]).amax(0))
        if "sink_mass" in rows[0]:
            alpha = _pad_stack([r["sink_mass"] for r in rows])  # [N, H, P]
            base = _pad_stack([r["sink_baseline"] for r in rows])  # [N, 1, P]
            sink.append(alpha[:, :, 0].nanmean(0))
            excess.append((alpha[:, :, 0] - base[:, :, 0]).nanmean(0))
            absm.append(alpha.nanmean(0))
            rel.append(_pad_stack([r["relative"] for r in rows]).nanmean(0))
            red.append(torch.stack([r["redundancy"] for r in rows]).mean(0))
            for h in range(H):
                hits: dict[int, int] = {}
                for r in rows:
                    a = r["sink_mass"][h] - r["sink_baseline"][0]  # excess over uniform attention
                    n = a.shape[-1]
                    # causal: position j of an n-token text is seen by n - j queries; a sink must
                    # be seen by at least half of them, so late keys with a few viewers cannot qualify
                    ok = (a > cfg.sink_threshold) & (torch.arange(n, 0, -1) >= max(cfg.min_viewers, n // 2))
                    for j in ok.nonzero().flatten().tolist():
                        hits[j] = hits.get(j, 0) + 1
                if hits:
                    positions[(layer, h)] = {j: (c / len(rows), c) for j, c in sorted(hits.items())}
        if "token_uniformity" in rows[0]:
            tu.append(torch.stack([r["token_uniformity"] for r in rows]).mean())
            er.append(torch.stack([r["effective_rank"] for r in rows]).mean())
            lz.append(torch.stack([r["lazy_cos"] for r in rows]).mean())
    st = lambda xs: torch.stack(xs) if xs else None  # noqa: E731
    sink_t = st(sink)
    summ = AttentionSummary(
        layers=layers, heads=H, entropy_mean=st(ent_mean), entropy_min=st(ent_min), entropy_frac_low=st(ent_low),
        sink_mass=sink_t, sink_excess=st(excess), sink_positions=positions,
        sink_share=None if sink_t is None else (sink_t > cfg.sink_threshold).float().mean(-1),
        max_logit=st(mxl), redundancy=st(red), relative=_pad_stack(rel) if rel else None,
        absolute=_pad_stack(absm) if absm else None, token_uniformity=st(tu), effective_rank=st(er),
        lazy_cos=st(lz), n_texts=len(texts),
    )
    if cfg.skip_loss:
        summ.base_loss, summ.skip_loss_delta = skip_loss_increase(adapter, texts, layers, cfg.batch_tokens)
    return summ


def attention_features(adapter, texts: str | Sequence[str], key_spans: Sequence | None = None,
                       cfg: CollectConfig = CollectConfig(residual=False)) -> dict[str, float] | list[dict[str, float]]:
    """Case-level attention features for the failure predictor (one streamed forward per batch).

    Args:
        adapter: an `HFAdapter`.
        texts: one prompt (returns one dict) or a list of prompts (returns a list of dicts, in order).
        key_spans: per text a ``(char_start, char_end)`` span of the prompt (e.g. where the fact
            is) or None; one span if `texts` is a single string.
        cfg: collection settings (layers, block size).

    Returns:
        ``attn.entropy.mean.L{i}`` (mean normalised entropy over heads and queries),
        ``attn.sink_mass.L{i}`` (mean over heads of Gu alpha at the first token),
        ``attn.max_logit.L{i}`` (max over heads), and with a span
        ``attn.key_span_mass.L{i}`` / ``attn.key_span_mass.max.L{i}`` (mass the last token puts
        on the span, mean / max over heads).
    """
    single = isinstance(texts, str)
    tx = [texts] if single else list(texts)
    spans = ([key_spans] if single else list(key_spans)) if key_spans is not None else None
    stats = per_text(adapter, tx, cfg, char_spans=spans)
    out = []
    for j, s in enumerate(stats):
        f: dict[str, float] = {}
        for i, d in s.items():
            f[f"attn.entropy.mean.L{i}"] = float(d["entropy"].nanmean())
            f[f"attn.max_logit.L{i}"] = float(d["max_logit"].amax())
            if "sink_mass" in d:
                f[f"attn.sink_mass.L{i}"] = float(d["sink_mass"][:, 0].mean())
            if "span_mass" in d and spans[j] is not None:
                last = d["span_mass"][:, -1]  # [H] the query that predicts the answer
                f[f"attn.key_span_mass.L{i}"] = float(last.mean())
                f[f"attn.key_span_mass.max.L{i}"] = float(last.max())
        out.append(f)
    return out[0] if single else out


def n_layers_of(adapter) -> int:
    return len(decoder_layers(adapter.model))
