"""A (prompt, target, foil) turned into ONE token row, and the forward that scores it.

Both answers are teacher-forced after the same prompt. A one-token answer is read at the last
prompt position; a longer answer also needs its own prefix ``answer[:-1]`` as input. Both
prefixes go into the same row after the prompt, as two branches of a tree (tree attention, as in
speculative-decoding verifiers): a branch token sees the prompt and its own branch only, and its
position id continues the prompt, so every answer position computes exactly what it would in its
own ``prompt + answer[:-1]`` row. A shared answer prefix is one shared node. When the extra tokens
form a single chain (the common single-token case, or one answer's prefix inside the other's) the
ordinary causal mask is already right and no custom mask is passed.

`Problem.run(model, prompt_embeds, fn)` is the one differentiable function every method uses
(LRP, gradient × input, Captum IG, perturbation curves): prompt embeddings ``[N, Tp, d]`` in,
one scalar per item ``[N]`` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from faultlens.attribution.masking import mask_token_id
from faultlens.attribution.targets import Answer, Readout, TargetFn
from faultlens.errors import FaultlensError


@dataclass(frozen=True)
class Problem:
    """Token-level layout of one attribution request (one row: prompt + answer-prefix tree).

    Attributes:
        prompt_ids: prompt token ids (BOS included when the tokenizer adds it).
        extra_ids: answer-prefix tokens after the prompt, in row order.
        extra_parent: row index of each extra token's parent (the previous token of its answer;
            ``n_prompt - 1`` for an answer's first prefix token).
        target, foil: where each answer is read (row positions predicting its tokens).
        bos: number of leading special tokens never ranked or masked (0 or 1).
        mask_id: the "absent token" for deletion curves and IG baselines (None = zero
            embedding), see `masking.py`.
    """

    prompt_ids: tuple[int, ...]
    extra_ids: tuple[int, ...]
    extra_parent: tuple[int, ...]
    target: Answer
    foil: Answer
    bos: int
    mask_id: int | None = None

    @property
    def n_prompt(self) -> int:
        return len(self.prompt_ids)

    @property
    def row_ids(self) -> tuple[int, ...]:
        """The token ids of the row the model runs on (prompt, then the answer-prefix tree)."""
        return self.prompt_ids + self.extra_ids

    @property
    def is_chain(self) -> bool:
        """True when every extra token follows the one before it (plain causal row)."""
        Tp = self.n_prompt
        return all(p == Tp + k - 1 for k, p in enumerate(self.extra_parent))

    @classmethod
    def build(cls, adapter, prompt: str, target: str, foil: str, mask: str = "eos") -> "Problem":
        """Tokenise lm-eval style via ``adapter.encode_pair`` (trailing prompt spaces move).

        Args:
            mask: the absent-token kind for perturbations and IG baselines (`masking.MASKS`).
        """
        if not foil:
            raise FaultlensError("A contrastive explanation needs a foil (the wrong answer); pass --foil.")
        ctx_t, tgt = adapter.encode_pair(prompt, target)
        ctx_f, fl = adapter.encode_pair(prompt, foil)
        if ctx_t != ctx_f:
            raise FaultlensError("Target and foil tokenise the prompt differently; put the separating space at the start of both answers.")
        if tuple(tgt) == tuple(fl):
            raise FaultlensError(f"Target {target!r} and foil {foil!r} are the same tokens; choose a different foil.")
        special = set(getattr(adapter.tokenizer, "all_special_ids", []) or [])
        bos = 1 if ctx_t and ctx_t[0] in special else 0
        if len(ctx_t) - bos < 1:
            raise FaultlensError("The prompt has no tokens besides BOS; give it some text to attribute to.")
        return cls.from_ids(tuple(ctx_t), tuple(tgt), tuple(fl), bos, mask_token_id(adapter.tokenizer, mask))

    @classmethod
    def from_ids(cls, prompt_ids: tuple[int, ...], target: tuple[int, ...], foil: tuple[int, ...],
                 bos: int, mask_id: int | None = None) -> "Problem":
        """Lay out the prefix tree: the longer answer first, so a shorter one often reuses its chain."""
        Tp = len(prompt_ids)
        extra_ids: list[int] = []
        extra_parent: list[int] = []
        node: dict[tuple[int, ...], int] = {(): Tp - 1}  # answer prefix -> row index of its last token
        answers = {}
        for name, ids in sorted((("target", target), ("foil", foil)), key=lambda p: -len(p[1])):
            for k in range(1, len(ids)):  # prefixes ids[:1] … ids[:-1] are inputs
                if ids[:k] not in node:
                    extra_ids.append(ids[k - 1])
                    extra_parent.append(node[ids[: k - 1]])
                    node[ids[:k]] = Tp + len(extra_ids) - 1
            answers[name] = Answer(ids=ids, positions=tuple(node[ids[:k]] for k in range(len(ids))))
        return cls(prompt_ids, tuple(extra_ids), tuple(extra_parent), answers["target"], answers["foil"], bos, mask_id)

    # ------------------------------------------------------------------ layout tensors
    def position_ids(self) -> list[int]:
        """Position id of each row token: prompt 0…Tp−1, an answer-prefix token one past its parent."""
        pos = list(range(self.n_prompt))
        for p in self.extra_parent:
            pos.append(pos[p] + 1)
        return pos

    def allowed(self) -> torch.Tensor:
        """``[T, T]`` bool: query a may attend key b (b is a or an ancestor of a in the tree)."""
        T = len(self.row_ids)
        ok = torch.ones(T, T, dtype=torch.bool).tril()  # prompt part: causal
        for k, p in enumerate(self.extra_parent):
            a = self.n_prompt + k
            ok[a, self.n_prompt:] = False
            ok[a] |= ok[p]  # inherit the parent's ancestors (parents come first in row order)
            ok[a, a] = True
        return ok

    def attention_kwargs(self, model: nn.Module, n: int, dtype: torch.dtype, device) -> dict:
        """``attention_mask`` / ``position_ids`` kwargs for an HF base model, {} for a plain chain.

        The mask is a 4D additive float mask ``[n, 1, T, T]``, which HF uses as given (so it must
        carry the model's sliding window itself: Mistral's ``sliding_window``, or Qwen2-style
        ``layer_types`` with sliding layers, for which a per-type dict is passed).
        """
        if self.is_chain:
            return {}
        T = len(self.row_ids)
        pos = torch.tensor(self.position_ids(), device=device)
        ok = self.allowed().to(device)
        cfg = model.config

        def additive(window: int | None) -> torch.Tensor:
            m = ok if window is None else ok & ((pos[:, None] - pos[None, :]) < window)
            out = torch.zeros(T, T, dtype=dtype, device=device).masked_fill(~m, torch.finfo(dtype).min)
            return out[None, None].expand(n, 1, T, T)  # [n, 1, T, T]

        layer_types = getattr(cfg, "layer_types", None)
        window = getattr(cfg, "sliding_window", None)
        if layer_types and "sliding_attention" in layer_types:
            mask = {"full_attention": additive(None), "sliding_attention": additive(window)}
        elif layer_types is None and window:
            mask = additive(window)
        else:
            mask = additive(None)
        return {"attention_mask": mask, "position_ids": pos[None].expand(n, T)}

    # ------------------------------------------------------------------ forward
    def prompt_embeds(self, model: nn.Module) -> torch.Tensor:
        """Token embeddings of the prompt ``[1, Tp, d]`` (detached)."""
        emb = model.get_input_embeddings()
        return emb(torch.tensor([self.prompt_ids], device=emb.weight.device)).detach()

    def row_embeds(self, model: nn.Module, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings ``[N, Tp, d]`` followed by the (detached) answer-prefix embeddings ``[N, T, d]``."""
        if not self.extra_ids:
            return prompt_embeds
        N, _, d = prompt_embeds.shape
        emb = model.get_input_embeddings()
        suf = emb(torch.tensor(self.extra_ids, dtype=torch.long, device=prompt_embeds.device)).detach()  # [Te, d]
        return torch.cat([prompt_embeds, suf[None].expand(N, -1, d).to(prompt_embeds.dtype)], dim=1)

    def run(self, model: nn.Module, prompt_embeds: torch.Tensor, fn: TargetFn) -> torch.Tensor:
        """The attributed scalar for each of N prompt-embedding variants.

        Args:
            model: the causal LM (any rules already attached by the caller).
            prompt_embeds: ``[N, Tp, d]``.
            fn: target function from `targets`.

        Returns:
            ``[N]``.
        """
        x = self.row_embeds(model, prompt_embeds)  # [N, T, d]
        base = getattr(model, model.base_model_prefix)
        kw = self.attention_kwargs(model, x.shape[0], x.dtype, x.device)
        hidden = base(inputs_embeds=x, use_cache=False, **kw).last_hidden_state  # [N, T, d]
        return fn(Readout(hidden, model.get_output_embeddings()), self.target, self.foil)
