"""A (prompt, target, foil) turned into token rows, and the forward that scores it.

Both answers are teacher-forced after the same prompt. A one-token answer is read at the last
prompt position; a longer answer needs a row ``prompt + answer[:-1]``. Rows are shared when one
answer's prefix is contained in another row, so the common single-token case is one row.
Rows are right-padded: with causal attention a later pad never changes an earlier position.

`Problem.run(model, prompt_embeds, fn)` is the one differentiable function every method uses
(LRP, gradient × input, Captum IG, perturbation curves): prompt embeddings ``[N, Tp, d]`` in,
one scalar per item ``[N]`` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from faultlens.errors import FaultlensError
from faultlens.attribution.targets import Answer, Readout, TargetFn


@dataclass(frozen=True)
class Problem:
    """Token-level layout of one attribution request.

    Attributes:
        prompt_ids: prompt token ids (BOS included when the tokenizer adds it).
        suffixes: per row, the answer-prefix ids that follow the prompt (``()`` for row 0 when
            an answer is one token).
        target, foil: where each answer is read.
        bos: number of leading special tokens never ranked or masked (0 or 1).
    """

    prompt_ids: tuple[int, ...]
    suffixes: tuple[tuple[int, ...], ...]
    target: Answer
    foil: Answer
    bos: int

    @property
    def n_prompt(self) -> int:
        return len(self.prompt_ids)

    @classmethod
    def build(cls, adapter, prompt: str, target: str, foil: str) -> "Problem":
        """Tokenise lm-eval style via ``adapter.encode_pair`` (trailing prompt spaces move)."""
        if not foil:
            raise FaultlensError("A contrastive explanation needs a foil (the wrong answer); pass --foil.")
        ctx_t, tgt = adapter.encode_pair(prompt, target)
        ctx_f, fl = adapter.encode_pair(prompt, foil)
        if ctx_t != ctx_f:
            raise FaultlensError("Target and foil tokenise the prompt differently; put the separating space at the start of both answers.")
        if tuple(tgt) == tuple(fl):
            raise FaultlensError(f"Target {target!r} and foil {foil!r} are the same tokens; choose a different foil.")
        suffixes: list[tuple[int, ...]] = []
        answers = {}
        for name, ids in sorted((("target", tuple(tgt)), ("foil", tuple(fl))), key=lambda p: -len(p[1])):
            need = ids[:-1]
            row = next((r for r, s in enumerate(suffixes) if s[: len(need)] == need), None)
            if row is None:
                suffixes.append(need)
                row = len(suffixes) - 1
            start = len(ctx_t) - 1
            answers[name] = Answer(ids=ids, row=row, positions=tuple(range(start, start + len(ids))))
        special = set(getattr(adapter.tokenizer, "all_special_ids", []) or [])
        bos = 1 if ctx_t and ctx_t[0] in special else 0
        if len(ctx_t) - bos < 1:
            raise FaultlensError("The prompt has no tokens besides BOS; give it some text to attribute to.")
        return cls(tuple(ctx_t), tuple(suffixes), answers["target"], answers["foil"], bos)

    # ------------------------------------------------------------------ forward
    def prompt_embeds(self, model: nn.Module) -> torch.Tensor:
        """Token embeddings of the prompt ``[1, Tp, d]`` (detached)."""
        emb = model.get_input_embeddings()
        return emb(torch.tensor([self.prompt_ids], device=emb.weight.device)).detach()

    def run(self, model: nn.Module, prompt_embeds: torch.Tensor, fn: TargetFn) -> torch.Tensor:
        """The attributed scalar for each of N prompt-embedding variants.

        Args:
            model: the causal LM (any rules already attached by the caller).
            prompt_embeds: ``[N, Tp, d]``.
            fn: target function from `targets`.

        Returns:
            ``[N]``.
        """
        N, Tp, d = prompt_embeds.shape
        emb = model.get_input_embeddings()
        R = len(self.suffixes)
        width = max(len(s) for s in self.suffixes)
        rows = []
        for s in self.suffixes:
            ids = list(s) + [self.prompt_ids[-1]] * (width - len(s))  # right pad: causal, never read
            suf = emb(torch.tensor(ids, dtype=torch.long, device=prompt_embeds.device)).detach()  # [width, d]
            rows.append(torch.cat([prompt_embeds, suf[None].expand(N, width, d).to(prompt_embeds.dtype)], dim=1))
        x = torch.stack(rows, dim=1).reshape(N * R, Tp + width, d)  # [N·R, T, d]
        base = getattr(model, model.base_model_prefix)
        hidden = base(inputs_embeds=x, use_cache=False).last_hidden_state  # [N·R, T, d]
        readout = Readout(hidden.view(N, R, Tp + width, -1), model.get_output_embeddings())
        return fn(readout, self.target, self.foil)
