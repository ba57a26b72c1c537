"""A small, real OpenAI-compatible HTTP server for any local Hugging Face causal LM.

It exists so black-box code paths (`OpenAIAdapter`) can be exercised end to end without a hub or
a GPU, and so a local model can be probed exactly as a hosted one would be. It is not a
production server: requests are served one model call at a time (a lock), and it binds only to
loopback addresses.

Endpoints (the subset of the OpenAI API that faultlens uses, in the OpenAI JSON schema):

* ``GET  /health``, ``GET /v1/models``
* ``POST /v1/completions`` — legacy text completion; ``echo`` + ``logprobs=k`` returns per-token
  log-probs of the prompt too (as vLLM and llama.cpp do), which is what prompt scoring needs.
  ``max_tokens=0`` with ``echo`` scores without generating.
* ``POST /v1/chat/completions`` — the messages are rendered with the tokenizer's chat template
  when it has one; a base model without a template gets the message contents joined by
  newlines. ``logprobs`` / ``top_logprobs`` follow the chat schema.

Run: ``python -m faultlens.models.serve_local --model stories260k --port 8000``.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_TOP_LOGPROBS = 20


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: str | list[str]
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: str | list[str] | None = None
    echo: bool = False
    logprobs: int | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None


class ApiError(Exception):
    """An OpenAI-style error response (`{"error": {"message", "type", "code"}}`)."""

    def __init__(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class TokenTrace:
    """Per-token view of a sequence: ids, text pieces, char offsets, log-probs and top-k."""

    ids: list[int]
    pieces: list[str]
    offsets: list[int]
    logprobs: list[float | None]  # None for the first token (nothing predicts it)
    top: list[list[tuple[str, float]] | None]


class LocalModelServer:
    """Wraps an `HFAdapter`; each method is one model call under a lock (torch is not re-entrant here).

    Args:
        adapter: a loaded `faultlens.models.hf.HFAdapter`.
        served_name: the model id clients pass in ``model`` (any value is accepted when empty).
    """

    def __init__(self, adapter, served_name: str) -> None:
        self.adapter = adapter
        self.served_name = served_name
        self.lock = threading.Lock()

    # ---------------------------------------------------------------- model calls
    def check_model(self, name: str | None) -> None:
        if name and self.served_name and name != self.served_name:
            raise ApiError(404, f"The model '{name}' does not exist; this server serves '{self.served_name}'.", "model_not_found")

    def encode(self, text: str) -> list[int]:
        return self.adapter.encode(text)

    @torch.inference_mode()
    def generate_ids(self, ids: list[int], max_new: int, temperature: float, top_p: float, seed: int | None) -> list[int]:
        """New token ids after `ids` (greedy when temperature is 0); stops at EOS."""
        if max_new <= 0:
            return []
        if len(ids) + max_new > self.adapter.max_length:
            raise ApiError(400, f"This model's maximum context length is {self.adapter.max_length} tokens; the prompt has "
                                f"{len(ids)} and {max_new} more were requested. Shorten the prompt or lower max_tokens.",
                           "context_length_exceeded")
        kw: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            kw.update(temperature=temperature, top_p=top_p)
            if seed is not None:
                torch.manual_seed(seed)
        model = self.adapter.model
        out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max_new, pad_token_id=self.adapter.pad_id, **kw)  # [1, T + new]
        return out[0, len(ids):].tolist()

    @torch.inference_mode()
    def trace(self, ids: list[int], k: int) -> TokenTrace:
        """Log-prob of every token given its prefix, and the top-k alternatives, from one forward."""
        if len(ids) > self.adapter.max_length:
            raise ApiError(400, f"This model's maximum context length is {self.adapter.max_length} tokens; the text has {len(ids)}.",
                           "context_length_exceeded")
        tok = self.adapter.tokenizer
        logits = self.adapter.model(input_ids=torch.tensor([ids])).logits[0]  # [T, V]
        lp = F.log_softmax(logits.float(), dim=-1)  # [T, V]; row t predicts token t+1
        token_lp: list[float | None] = [None] + [float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]
        top: list[list[tuple[str, float]] | None] = [None]
        if k > 0:
            vals, idx = lp[:-1].topk(min(k, lp.shape[-1]), dim=-1)  # [T-1, k]
            for t in range(len(ids) - 1):
                # decode each alternative after a few context tokens so its leading space survives
                ctx = ids[max(0, t - 2):t + 1]
                head = len(tok.decode(ctx, skip_special_tokens=True))
                top.append([(tok.decode(ctx + [int(i)], skip_special_tokens=True)[head:], float(v))
                            for v, i in zip(vals[t], idx[t])])
        else:
            top += [None] * (len(ids) - 1)
        # Offsets come from incremental decoding, as vLLM's detokenizer does: the text of token t is
        # what decoding ids[:t+1] adds to decoding ids[:t] (so multi-byte and space handling agree).
        prefixes = [tok.decode(ids[:t], skip_special_tokens=True) for t in range(len(ids) + 1)]
        pieces = [prefixes[t + 1][len(prefixes[t]):] for t in range(len(ids))]
        offsets = [len(prefixes[t]) for t in range(len(ids))]
        return TokenTrace(list(ids), pieces, offsets, token_lp, top)

    # ---------------------------------------------------------------- endpoints
    def completions(self, req: CompletionRequest) -> dict:
        self.check_model(req.model)
        if req.logprobs is not None and not 0 <= req.logprobs <= MAX_TOP_LOGPROBS:
            raise ApiError(400, f"logprobs must be between 0 and {MAX_TOP_LOGPROBS}.")
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not prompts or any(not p for p in prompts):
            raise ApiError(400, "prompt must be a non-empty string (or a list of them).")
        choices, n_prompt, n_new = [], 0, 0
        for i, prompt in enumerate(prompts):
            with self.lock:
                ids = self.encode(prompt)
                new = self.generate_ids(ids, req.max_tokens, req.temperature, req.top_p, req.seed)
                text, new, reason = self.cut(ids, new, req.stop)
                tr = self.trace(ids + new, req.logprobs) if req.logprobs is not None else None
            n_prompt, n_new = n_prompt + len(ids), n_new + len(new)
            choice = {"index": i, "text": (prompt + text) if req.echo else text, "finish_reason": reason, "logprobs": None}
            if tr is not None:
                first = 0 if req.echo else len(ids)
                # Offsets index the returned text: prompt tokens index the verbatim prompt, generated
                # tokens follow it (echo) or start at 0 (no echo).
                start_new = tr.offsets[len(ids)] if len(ids) < len(tr.ids) else 0
                lead = len(prompt) if req.echo else 0
                offsets = [o if j < len(ids) else lead + o - start_new for j, o in enumerate(tr.offsets)]
                choice["logprobs"] = {
                    "tokens": tr.pieces[first:],
                    "token_logprobs": tr.logprobs[first:],
                    "top_logprobs": [dict(t) if t is not None else None for t in tr.top[first:]],
                    "text_offset": offsets[first:],
                }
            choices.append(choice)
        return {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "text_completion", "created": int(time.time()),
                "model": self.served_name, "choices": choices,
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_new, "total_tokens": n_prompt + n_new}}

    def chat(self, req: ChatRequest) -> dict:
        self.check_model(req.model)
        if not req.messages:
            raise ApiError(400, "messages must hold at least one message.")
        k = req.top_logprobs or 0
        if not 0 <= k <= MAX_TOP_LOGPROBS:
            raise ApiError(400, f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}.")
        max_new = req.max_completion_tokens or req.max_tokens or 16
        with self.lock:
            ids = self.render_chat(req.messages)
            new = self.generate_ids(ids, max_new, req.temperature, req.top_p, req.seed)
            text, new, reason = self.cut(ids, new, req.stop)
            tr = self.trace(ids + new, k) if req.logprobs and new else None
        logprobs = None
        if req.logprobs:
            content = []
            if tr is not None:
                for t in range(len(ids), len(tr.ids)):
                    alts = [{"token": s, "logprob": v, "bytes": list(s.encode())} for s, v in (tr.top[t] or [])]
                    content.append({"token": tr.pieces[t], "logprob": tr.logprobs[t], "bytes": list(tr.pieces[t].encode()),
                                    "top_logprobs": alts})
            logprobs = {"content": content}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": self.served_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
                             "logprobs": logprobs}],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": len(new), "total_tokens": len(ids) + len(new)}}

    def render_chat(self, messages: list[ChatMessage]) -> list[int]:
        tok = self.adapter.tokenizer
        msgs = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(tok, "chat_template", None):
            return list(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=False))
        # A base model has no template: its "conversation" is plain text, so the contents are the prompt.
        return self.encode("\n".join(m["content"] for m in msgs))

    def cut(self, ids: list[int], new: list[int], stop: str | list[str] | None) -> tuple[str, list[int], str]:
        """Text of `new` after `ids`; truncated at EOS or the first stop string. Returns (text, ids kept, finish reason).

        The text is what decoding ``ids + new`` adds to decoding ``ids`` (vLLM's incremental
        detokenisation), so ``prompt + text`` reads as the model wrote it: a SentencePiece word
        token keeps its leading space, which decoding `new` alone would drop.
        """
        tok = self.adapter.tokenizer
        eos = tok.eos_token_id
        reason = "length"
        if eos is not None and eos in new:
            new, reason = new[:new.index(eos)], "stop"
        head = len(tok.decode(ids, skip_special_tokens=True))
        after = lambda part: tok.decode(ids + part, skip_special_tokens=True)[head:]  # noqa: E731
        text = after(new)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        hits = [text.index(s) for s in stops if s and s in text]
        if hits:
            text, reason = text[:min(hits)], "stop"
            new = next(new[:j] for j in range(len(new) + 1) if len(after(new[:j])) >= len(text))
        return text, new, reason


def build_app(adapter, served_name: str) -> FastAPI:
    """The FastAPI app serving `adapter` under the model id `served_name`."""
    srv = LocalModelServer(adapter, served_name)
    app = FastAPI(title="faultlens local OpenAI-compatible server")

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"message": exc.message, "type": "invalid_request_error", "code": exc.code}},
                            status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": {"message": f"Invalid request: {where}: {first.get('msg', 'bad value')}",
                                       "type": "invalid_request_error", "code": "invalid_request"}}, status_code=400)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": served_name, "object": "model", "created": 0, "owned_by": "faultlens"}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:  # sync: FastAPI runs it in its thread pool
        return srv.completions(req)

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict:
        return srv.chat(req)

    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stories260k", help="shipped model name or local HF model directory")
    ap.add_argument("--served-name", default=None, help="model id clients send (default: --model)")
    ap.add_argument("--host", default="127.0.0.1", help="loopback only: 127.0.0.1, localhost or ::1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.host not in LOOPBACK:
        ap.error(f"--host {args.host!r} is not a loopback address; this server binds {', '.join(LOOPBACK)} only.")
    import uvicorn

    from faultlens.errors import FaultlensError
    from faultlens.models.hf import HFAdapter

    torch.set_num_threads(args.threads)
    try:
        adapter = HFAdapter.load(args.model)
    except FaultlensError as exc:
        raise SystemExit(f"error: {exc}") from None
    uvicorn.run(build_app(adapter, args.served_name or args.model), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
