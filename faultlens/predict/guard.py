"""The serve-time guard: an OpenAI-compatible endpoint that generates with a local HF model and
returns, with every response, the predicted failure risk of the request and its top features.

Endpoints (127.0.0.1 only): ``POST /v1/completions``, ``POST /v1/chat/completions``,
``GET /v1/models``, ``GET /health``. Each completion carries a ``faultlens`` object:
``{"risk", "flagged", "threshold", "refused", "top_features", "timing_ms"}``. A request whose risk
is at or above the threshold is flagged; with ``refuse=True`` it is not generated and the choice
comes back with ``finish_reason: "content_filter"`` and a ``refusal`` text, as OpenAI does.
Bad requests get OpenAI-style JSON errors (``{"error": {"message", "type", "param", "code"}}``)
with a 4xx status, and the server keeps serving. The model is used under one lock (torch
modules are not safe to run concurrently), so concurrent requests queue instead of racing.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from faultlens.errors import FaultlensError
from faultlens.predict.risk import RiskScorer


@dataclass(frozen=True)
class GuardConfig:
    """Guard behaviour.

    Attributes:
        threshold: flag requests whose predicted failure risk is >= this.
        refuse: do not generate for flagged requests (answer with a refusal instead).
        max_tokens_cap: the most new tokens one request may ask for.
        top_features: how many contributing features to return.
    """

    threshold: float = 0.5
    refuse: bool = False
    max_tokens_cap: int = 256
    top_features: int = 5


class _Sampling(BaseModel):
    model: str | None = None
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: str


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)


def chat_prompt(messages: list[ChatMessage]) -> str:
    """The shipped models are not chat-tuned: the conversation is their contents, one per line."""
    return "\n".join(m.content for m in messages if m.content.strip())


def _error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "param": param, "code": status}})


def _truncate_at_stop(text: str, stop) -> tuple[str, bool]:
    stops = [stop] if isinstance(stop, str) else (stop or [])
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Guard:
    """Generation plus risk scoring behind one lock (the part of the app that touches the model)."""

    def __init__(self, adapter, scorer: RiskScorer | None, cfg: GuardConfig) -> None:
        self.adapter, self.scorer, self.cfg = adapter, scorer, cfg
        self.lock = threading.Lock()

    def run(self, prompt: str, req: _Sampling) -> tuple[str, str, dict]:
        """(text, finish_reason, faultlens info) for one prompt."""
        if req.stream:
            raise FaultlensError("stream=true is not supported by the faultlens guard; send stream=false.")
        if req.max_tokens > self.cfg.max_tokens_cap:
            raise FaultlensError(f"max_tokens {req.max_tokens} is above this guard's cap of {self.cfg.max_tokens_cap}.")
        if not prompt.strip():
            raise FaultlensError("The prompt is empty; send some text.")
        sampling = {}
        if req.temperature > 0:
            sampling = {"do_sample": True, "temperature": req.temperature, "top_p": req.top_p}
        info: dict = {"threshold": self.cfg.threshold, "timing_ms": {}}
        with self.lock:
            if self.scorer is not None:
                t0 = time.perf_counter()
                r = self.scorer.score([prompt])[0]
                info["timing_ms"]["risk"] = round(1000 * (time.perf_counter() - t0), 2)
                info.update(risk=r.risk, flagged=r.risk >= self.cfg.threshold, top_features=r.top)
            else:
                info.update(risk=None, flagged=False, top_features=[])
            info["refused"] = bool(info["flagged"] and self.cfg.refuse)
            if info["refused"]:
                return "", "content_filter", info
            if req.seed is not None:
                import torch

                torch.manual_seed(req.seed)
            t0 = time.perf_counter()
            text = self.adapter.generate([prompt], max_new_tokens=req.max_tokens, **sampling)[0]
            info["timing_ms"]["generate"] = round(1000 * (time.perf_counter() - t0), 2)
        text, stopped = _truncate_at_stop(text, req.stop)
        return text, "stop" if stopped else "length", info

    def n_tokens(self, text: str) -> int:
        return len(self.adapter.tokenizer(text, add_special_tokens=False).input_ids) if text else 0


def build_app(adapter, scorer: RiskScorer | None, cfg: GuardConfig = GuardConfig()) -> FastAPI:
    """The guard's FastAPI app. `scorer=None` serves plain generation (the latency baseline)."""
    guard = Guard(adapter, scorer, cfg)
    app = FastAPI(title="faultlens guard", docs_url=None, redoc_url=None, openapi_url=None)
    model_name = getattr(adapter, "name", "model")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            msg = "The request body is not valid JSON."
        return _error(400, f"{msg}" + (f" (field {loc})" if loc else ""), loc)

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), kind="not_found_error" if exc.status_code == 404 else "invalid_request_error")

    @app.exception_handler(FaultlensError)
    async def _user(_req: Request, exc: FaultlensError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def _crash(_req: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(exc).__name__}", kind="server_error")

    def _check_model(req: _Sampling) -> None:
        if req.model not in (None, "", model_name):
            raise HTTPException(404, f"The model {req.model!r} does not exist; this guard serves {model_name!r}.")

    def _usage(prompt: str, text: str) -> dict:
        p, c = guard.n_tokens(prompt), guard.n_tokens(text)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": model_name, "risk": scorer is not None, "threshold": cfg.threshold}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:
        _check_model(req)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if len(prompts) != 1:
            raise FaultlensError("Send exactly one prompt per request (a string).")
        text, finish, info = guard.run(prompts[0], req)
        return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": model_name, "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
                "usage": _usage(prompts[0], text), "faultlens": info}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict:
        _check_model(req)
        prompt = chat_prompt(req.messages)
        text, finish, info = guard.run(prompt, req)
        msg = {"role": "assistant", "content": text, "refusal": None}
        if info["refused"]:
            msg = {"role": "assistant", "content": None,
                   "refusal": f"faultlens guard: predicted failure risk {info['risk']:.2f} >= threshold {cfg.threshold:.2f}"}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name, "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                "usage": _usage(prompt, text), "faultlens": info}

    return app
