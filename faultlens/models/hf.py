"""`HFAdapter`: scoring, generation and capture for any local Hugging Face causal LM.

Scoring is the hot path of every probe battery, so it is built for throughput:

* requests are grouped by prompt; each distinct prompt runs once, and its KV cache is shared
  by all of its continuations (multiple-choice cases score 2–4 continuations per prompt);
* prompts are sorted by length and batched under a token budget (left padding + explicit
  position ids, so padding never changes a score);
* logits are computed only where a continuation token is predicted (`logits_to_keep`), which
  skips the vocabulary projection on prompt positions — on a 32k vocabulary that projection is
  most of the FLOPs.

Tokenisation follows lm-eval-harness's convention so scores are comparable: trailing spaces of
the prompt move to the continuation, the pair is encoded whole, and the continuation tokens are
what follows the prompt's own encoding.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from faultlens import capture as _capture
from faultlens.errors import FaultlensError
from faultlens.models.loading import load_model_and_tokenizer


@dataclass(frozen=True)
class ScoreConfig:
    """How `score` batches. `token_budget` bounds batch rows × padded length."""

    token_budget: int = 16384
    max_batch: int = 64
    prefix_sharing: bool = True


class HFAdapter:
    """White-box adapter over a transformers causal LM.

    Args:
        model: a `PreTrainedModel` causal LM (eval mode is set).
        tokenizer: its tokenizer.
        name: label stored with results.
        add_special_tokens: prepend BOS etc. as the tokenizer does by default.
    """

    def __init__(self, model, tokenizer, name: str = "model", add_special_tokens: bool = True,
                 score_config: ScoreConfig | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.add_special_tokens = add_special_tokens
        self.score_config = score_config or ScoreConfig()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.max_length = int(getattr(model.config, "max_position_embeddings", 0) or getattr(model.config, "n_positions", 0) or 10**9)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._has_keep = "logits_to_keep" in params
        self.path = None

    @classmethod
    def load(cls, name_or_path: str, attn_implementation: str = "sdpa", dtype: torch.dtype = torch.float32,
             trust_remote_code: bool = False, **kw) -> "HFAdapter":
        """Load a shipped model by name or a local HF directory."""
        model, tok, path = load_model_and_tokenizer(name_or_path, attn_implementation, dtype, trust_remote_code)
        ad = cls(model, tok, name=str(name_or_path), **kw)
        ad.path = path
        return ad

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ------------------------------------------------------------------ tokenisation
    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=self.add_special_tokens).input_ids

    def encode_pair(self, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
        """(prompt ids, continuation ids), lm-eval style: encode whole, split at the prompt's length."""
        return self.encode_pairs([prompt], [continuation])[0]

    def encode_pairs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Batch `encode_pair`: each distinct prompt is tokenised once, all in two tokenizer calls."""
        split = []
        for prompt, cont in zip(prompts, continuations):
            if not prompt.strip():
                raise FaultlensError("Empty prompt: every case needs prompt text (check the 'prompt' field).")
            if not cont:
                raise FaultlensError(f"Empty continuation after prompt {prompt[:40]!r}: give each case a target and foil.")
            n_space = len(prompt) - len(prompt.rstrip(" "))  # trailing spaces belong to the continuation
            split.append((prompt[:-n_space], prompt[-n_space:] + cont) if n_space else (prompt, cont))
        uniq = list(dict.fromkeys(p for p, _ in split))
        tok = lambda texts: self.tokenizer(list(texts), add_special_tokens=self.add_special_tokens).input_ids
        ctx_of = dict(zip(uniq, tok(uniq)))
        wholes = tok([p + c for p, c in split])
        out = []
        for (prompt, cont), whole in zip(split, wholes):
            ctx = ctx_of[prompt]
            cont_ids = whole[len(ctx):]
            if not cont_ids:  # the tokenizer merged the continuation into the prompt's last token
                cont_ids = self.tokenizer(cont, add_special_tokens=False).input_ids
            if len(ctx) + len(cont_ids) > self.max_length:
                raise FaultlensError(
                    f"Prompt + continuation is {len(ctx) + len(cont_ids)} tokens but the model's context is "
                    f"{self.max_length}; shorten the case (prompt starts {prompt[:40]!r})."
                )
            out.append((ctx, cont_ids))
        return out

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Summed natural-log probability of each continuation given its prompt.

        Returns one float per (prompt, continuation) pair, in input order, independent of
        batch size and padding.
        """
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations must have the same length")
        return self.score_ids(self.encode_pairs(prompts, continuations))

    @torch.inference_mode()
    def score_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[float]:
        """`score` on already-tokenised (prompt ids, continuation ids) pairs."""
        if not self.score_config.prefix_sharing:
            return self._score_plain(pairs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, _) in enumerate(pairs):
            groups.setdefault(tuple(ctx), []).append(i)
        order = sorted(groups, key=len, reverse=True)
        out = [0.0] * len(pairs)
        for batch in self._batches(order, lambda ctx: len(ctx) + max(len(pairs[i][1]) for i in groups[ctx])):
            self._score_group_batch(batch, groups, pairs, out)
        return out

    def _batches(self, items: list, length: Callable[[Any], int]) -> Iterator[list]:
        """Greedy batches of length-sorted items under the token budget."""
        cfg, batch, width = self.score_config, [], 0
        for it in items:
            w = max(width, length(it))
            if batch and (w * (len(batch) + 1) > cfg.token_budget or len(batch) >= cfg.max_batch):
                yield batch
                batch, w = [], length(it)
            batch.append(it)
            width = w
        if batch:
            yield batch

    def _forward(self, ids, mask, pos, cache=None, keep: int | None = None):
        kw = {self._cache_kw: cache} if cache is not None else {}
        if keep is not None and self._has_keep:
            kw["logits_to_keep"] = keep
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **kw)
        logits = out.logits if keep is None or self._has_keep else out.logits[:, -keep:]
        return logits, getattr(out, "cache", None) if hasattr(out, "cache") else out.past_key_values

    def _score_group_batch(self, ctxs: list[tuple[int, ...]], groups, pairs, out: list[float]) -> None:
        b, L = len(ctxs), max(len(c) for c in ctxs)
        ids = torch.full((b, L), self.pad_id, dtype=torch.long)  # [b, L] left-padded prompts
        mask = torch.zeros((b, L), dtype=torch.long)
        for r, ctx in enumerate(ctxs):
            ids[r, L - len(ctx):] = torch.tensor(ctx)
            mask[r, L - len(ctx):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [b, L]
        logits, cache = self._forward(ids, mask, pos, keep=1)
        first_lp = F.log_softmax(logits[:, -1].float(), dim=-1)  # [b, V]
        rows = []  # (prompt row, request index) for continuations longer than one token
        for r, ctx in enumerate(ctxs):
            for i in groups[ctx]:
                cont = pairs[i][1]
                out[i] = float(first_lp[r, cont[0]])
                if len(cont) > 1:
                    rows.append((r, i))
        if not rows:
            return
        Lc = max(len(pairs[i][1]) - 1 for _, i in rows)
        n = len(rows)
        cids = torch.full((n, Lc), self.pad_id, dtype=torch.long)  # [n, Lc] right-padded cont[:-1]
        cmask = torch.zeros((n, Lc), dtype=torch.long)
        for j, (_, i) in enumerate(rows):
            c = pairs[i][1][:-1]
            cids[j, :len(c)] = torch.tensor(c)
            cmask[j, :len(c)] = 1
        idx = torch.tensor([r for r, _ in rows])
        cache.reorder_cache(idx)  # now one cache row per continuation
        full_mask = torch.cat([mask[idx], cmask], dim=1)  # [n, L + Lc]
        cpos = mask[idx].sum(-1, keepdim=True) + torch.arange(Lc)[None]  # [n, Lc]
        clogits, _ = self._forward(cids, full_mask, cpos, cache=cache)
        lp = F.log_softmax(clogits.float(), dim=-1)  # [n, Lc, V]
        for j, (_, i) in enumerate(rows):
            tgt = torch.tensor(pairs[i][1][1:])
            out[i] += float(lp[j, torch.arange(len(tgt)), tgt].sum())

    def _score_plain(self, pairs) -> list[float]:
        """Reference path: one right-padded row per request, no sharing."""
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        out = [0.0] * len(pairs)
        for batch in self._batches(order, lambda i: len(pairs[i][0]) + len(pairs[i][1])):
            L = max(len(pairs[i][0]) + len(pairs[i][1]) for i in batch)
            ids = torch.full((len(batch), L), self.pad_id, dtype=torch.long)  # [b, L]
            mask = torch.zeros_like(ids)
            for r, i in enumerate(batch):
                seq = list(pairs[i][0]) + list(pairs[i][1])
                ids[r, :len(seq)] = torch.tensor(seq)
                mask[r, :len(seq)] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            lp = F.log_softmax(logits.float(), dim=-1)  # [b, L, V]
            for r, i in enumerate(batch):
                nc, nt = len(pairs[i][0]), len(pairs[i][1])
                tgt = torch.tensor(pairs[i][1])
                out[i] = float(lp[r, torch.arange(nc - 1, nc + nt - 1), tgt].sum())
        return out

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, **sampling: Any) -> list[str]:
        """Greedy (default) or sampled continuations, decoded without the prompt."""
        if any(not p.strip() for p in prompts):
            raise FaultlensError("Empty prompt: every request needs prompt text.")
        enc = [self.encode(p) for p in prompts]
        L = max(len(e) for e in enc)
        if L + max_new_tokens > self.max_length:
            raise FaultlensError(f"Prompt of {L} tokens + {max_new_tokens} new tokens exceeds the model's context of {self.max_length}.")
        ids = torch.full((len(enc), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, e in enumerate(enc):
            ids[r, L - len(e):] = torch.tensor(e)
            mask[r, L - len(e):] = 1
        sampling.setdefault("do_sample", False)
        gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                  pad_token_id=self.pad_id, **sampling)
        return [self._decode_continuation(e, g[L:].tolist()) for e, g in zip(enc, gen)]

    def _decode_continuation(self, prompt_ids: list[int], new_ids: list[int]) -> str:
        """New text as it reads after the prompt (SentencePiece drops a leading space when decoding alone)."""
        dec = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)
        full, pre = dec(prompt_ids + new_ids), dec(prompt_ids)
        return full[len(pre):] if full.startswith(pre) else dec(new_ids)

    # ------------------------------------------------------------------ internals
    def capture(self, points: Sequence[str], fn: Callable[[str, Any], Any] | None = None):
        """Context manager over named hook points (see `faultlens.capture`)."""
        return _capture.capture(self.model, points, fn)

    def tokenize_batch(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Right-padded `input_ids` / `attention_mask` for a forward under `capture`."""
        enc = [self.encode(t) for t in texts]
        if any(len(e) > self.max_length for e in enc):
            raise FaultlensError(f"A text is longer than the model's context of {self.max_length} tokens; shorten it.")
        L = max(len(e) for e in enc)
        ids = torch.full((len(enc), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, e in enumerate(enc):
            ids[r, :len(e)] = torch.tensor(e)
            mask[r, :len(e)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    @torch.inference_mode()
    def forward(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run texts (right-padded) and return input ids, mask and logits ``[B, T, V]``."""
        batch = self.tokenize_batch(texts)
        logits = self.model(**batch).logits
        return {**batch, "logits": logits}
