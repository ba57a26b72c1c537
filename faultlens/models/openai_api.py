"""`OpenAIAdapter`: a black-box adapter for any OpenAI-compatible HTTP server (vLLM, llama.cpp,
`transformers serve`, hosted APIs, `faultlens.models.serve_local`).

What it can do depends on the server, and it says so instead of guessing:

* `generate` always works (chat completions by default, legacy ``/completions`` on request);
* `score` needs *prompt* log-probs — the legacy ``/completions`` endpoint with ``echo=True,
  logprobs=1, max_tokens=0`` as vLLM and llama.cpp serve it. Support is detected once; a server
  without it gets one `FaultlensError` telling the user to run probes in generation mode;
* `blackbox_features` turns a (prompt, response) pair into lengths plus, when the server returns
  top log-probs, the output-distribution statistics of SelfCheckGPT's grey-box detector
  (Manakul et al., EMNLP 2023: mean/max of −log p and of the token entropy).

There is no `capture`: the runner treats an adapter without it as black-box. HTTP concerns
(timeouts, retries with exponential backoff on 408/409/429/5xx and connection errors, a bounded
number of requests in flight, one clear error line for unreachable / non-JSON / wrong-schema
replies) live in `OpenAIAdapter._request`; response parsing and the feature maths are pure
functions at the bottom, tested on their own.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import httpx

from faultlens.errors import FaultlensError
from faultlens.models.openai_wire import (  # noqa: F401  (re-exported)
    TokenLogprob, _field, error_message, malformed, parse_chat_logprobs, parse_completion_logprobs)
from faultlens.models.blackbox_features import logprob_features, repeat_fraction, topk_entropy  # noqa: F401

NO_PROMPT_LOGPROBS = "server does not return prompt logprobs; run the probes in generation mode"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})  # what openai-python retries too
SAMPLING_KEYS = frozenset({"temperature", "top_p", "seed", "stop", "top_k", "repetition_penalty",
                           "presence_penalty", "frequency_penalty"})
STATUS_HINT = {401: "set the key with --api-key-env VAR", 403: "check the API key's permissions",
               404: "check --api-base (usually ends in /v1) and --api-model",
               422: "the server rejected the request body; is it OpenAI-compatible?"}


@dataclass(frozen=True)
class Generation:
    """One completion with whatever token detail the server returned (`tokens` may be empty)."""

    text: str
    finish_reason: str | None
    tokens: tuple[TokenLogprob, ...] = ()


class OpenAIAdapter:
    """Black-box `ModelAdapter` over an OpenAI-compatible server.

    Args:
        base_url: server root or its ``/v1`` URL (``http://127.0.0.1:8000`` gets ``/v1`` appended).
        model: model id sent in every request (as listed by ``GET /v1/models``).
        api_key: bearer token, if the server needs one.
        timeout: seconds per HTTP request (connect, read, write).
        max_retries: retries after the first attempt on 408/409/429/5xx and connection errors.
        concurrency: most requests in flight at once (a thread pool plus a semaphore).
        endpoint: "chat" (``/chat/completions``) or "completions" (legacy) for `generate`.
        backoff: first retry delay in seconds; doubles per retry, capped at `max_backoff`,
            and a ``Retry-After`` header wins when present (capped the same way).
        top_logprobs: alternatives requested per generated token (0: ask for none; 20 is the
            OpenAI maximum and what the predictor's black-box features assume).
        system_prompt: optional system message for chat requests.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0,
                 max_retries: int = 3, concurrency: int = 4, endpoint: str = "chat", backoff: float = 0.5,
                 max_backoff: float = 8.0, top_logprobs: int = 20, system_prompt: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if endpoint not in ("chat", "completions"):
            raise FaultlensError(f"Unknown API endpoint {endpoint!r}; use chat or completions.")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise FaultlensError("API concurrency must be >= 1, retries >= 0 and the timeout > 0 seconds.")
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.name = model
        self.endpoint = endpoint
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.timeout = timeout
        self.concurrency = concurrency
        self.top_logprobs = top_logprobs
        self.system_prompt = system_prompt
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout),
                                    limits=httpx.Limits(max_connections=concurrency), transport=transport)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="faultlens-api")
        self._prompt_logprobs: bool | None = None  # detected once, on first need
        self._echo_max_tokens = 0  # some servers refuse max_tokens=0; then 1 and drop the extra token
        self._gen_logprobs = top_logprobs > 0  # cleared if the server rejects logprob fields
        self._gen_cache: OrderedDict[tuple[str, str], Generation] = OrderedDict()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> "OpenAIAdapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_models(self) -> list[str]:
        """Model ids the server lists (``GET /models``)."""
        data = self._request("GET", "/models", None)
        return [str(_field(m, "id", "/models", data)) for m in _field(data, "data", "/models", data)]

    def check(self) -> None:
        """Fail early, with one line, if the server is unreachable or does not serve `model`."""
        ids = self.list_models()
        if ids and self.model not in ids:
            raise FaultlensError(f"Server at {self.base_url} does not list model {self.model!r} (it lists: "
                                 f"{', '.join(ids[:8])}); pass one of those with --api-model.")

    # ---------------------------------------------------------------- generation
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, **sampling: Any) -> list[str]:
        """Completion text for each prompt, in order (greedy, i.e. temperature 0, unless sampling says otherwise).

        Sampling keys follow HF names where they differ: ``do_sample=True`` without a
        temperature means temperature 1; other keys (`SAMPLING_KEYS`) go into the request body.
        """
        return [g.text for g in self.generate_detailed(prompts, max_new_tokens, **sampling)]

    def generate_detailed(self, prompts: Sequence[str], max_new_tokens: int = 32, **sampling: Any) -> list[Generation]:
        """Like `generate`, keeping finish reasons and per-token log-probs (when the server gives them)."""
        if any(not p.strip() for p in prompts):
            raise FaultlensError("Empty prompt: every request needs prompt text.")
        body = {"model": self.model, "max_tokens": int(max_new_tokens), **sampling_body(sampling)}
        gens = self._map(lambda p: self._generate_one(p, body), list(prompts))
        with self._lock:
            for p, g in zip(prompts, gens):
                self._gen_cache[(p, g.text)] = g
                while len(self._gen_cache) > 4096:
                    self._gen_cache.popitem(last=False)
        return gens

    def _generate_one(self, prompt: str, body: dict) -> Generation:
        chat = self.endpoint == "chat"
        path = "/chat/completions" if chat else "/completions"
        if chat:
            msgs = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
            body = {**body, "messages": msgs + [{"role": "user", "content": prompt}]}
        else:
            body = {**body, "prompt": prompt}
        want = self._gen_logprobs
        if want:
            body = {**body, **({"logprobs": True, "top_logprobs": self.top_logprobs} if chat else {"logprobs": self.top_logprobs})}
        try:
            data = self._request("POST", path, body)
        except ApiStatusError as exc:
            if not (want and exc.status < 500 and "logprob" in exc.server_message.lower()):
                raise
            self._gen_logprobs = False  # the server refuses logprob fields: ask without them from now on
            return self._generate_one(prompt, {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")})
        choice = _field(_field(data, "choices", path, data), 0, path, data)
        if chat:
            text = _field(_field(choice, "message", path, data), "content", path, data) or ""
            tokens = parse_chat_logprobs(choice.get("logprobs"), path, data)
        else:
            text = _field(choice, "text", path, data)
            tokens = parse_completion_logprobs(choice.get("logprobs"), path, data)
        if not isinstance(text, str):
            raise malformed(path, "choices[0] text is not a string", data)
        return Generation(text, choice.get("finish_reason"), tokens)

    # ---------------------------------------------------------------- scoring
    def supports_prompt_logprobs(self) -> bool:
        """Whether ``/completions`` with ``echo`` returns log-probs of the prompt tokens (checked once)."""
        if self._prompt_logprobs is None:
            probe = "Hello world"
            for max_tokens in (0, 1):
                try:
                    data = self._request("POST", "/completions", {"model": self.model, "prompt": probe, "echo": True,
                                                                  "logprobs": 1, "max_tokens": max_tokens, "temperature": 0},
                                         retries=min(1, self.max_retries))
                except ApiStatusError:
                    continue  # e.g. max_tokens=0 refused (transformers serve: HTTP 500); try the next form
                if echoes_prompt_logprobs(data, probe):
                    self._echo_max_tokens = max_tokens
                    self._prompt_logprobs = True
                    break
            else:
                self._prompt_logprobs = False
        return self._prompt_logprobs

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Summed natural-log probability of each continuation given its prompt (lm-eval convention).

        Trailing spaces of the prompt move to the continuation; the pair is sent whole with
        ``echo``, the prompt alone gives its token count, and the log-probs of the tokens after
        that count are summed — the same split `HFAdapter.score` makes. Raises `FaultlensError`
        (`NO_PROMPT_LOGPROBS`) when the server cannot return prompt log-probs.
        """
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations must have the same length")
        if not self.supports_prompt_logprobs():
            raise FaultlensError(NO_PROMPT_LOGPROBS)
        pairs = [split_pair(p, c) for p, c in zip(prompts, continuations)]
        texts = sorted({ctx for ctx, _ in pairs} | {ctx + cont for ctx, cont in pairs})
        echo = dict(zip(texts, self._map(lambda t: self.echo_logprobs(t, 0), texts)))
        return [continuation_logprob(echo[ctx + cont], echo[ctx], len(ctx)) for ctx, cont in pairs]

    def echo_logprobs(self, text: str, k: int) -> list[tuple[int, float | None, tuple[float, ...]]]:
        """Per-token (char offset, log-prob, top-k log-probs) of `text` itself, from one echo request."""
        data = self._request("POST", "/completions", {"model": self.model, "prompt": text, "echo": True,
                                                      "logprobs": max(1, k), "max_tokens": self._echo_max_tokens,
                                                      "temperature": 0})
        path = "/completions"
        lp = _field(_field(_field(data, "choices", path, data), 0, path, data), "logprobs", path, data)
        vals, offs = _field(lp, "token_logprobs", path, data), _field(lp, "text_offset", path, data)
        tops = lp.get("top_logprobs") or [None] * len(vals)
        if not (isinstance(vals, list) and isinstance(offs, list) and len(vals) == len(offs) == len(tops)):
            raise malformed(path, "logprobs.token_logprobs / text_offset / top_logprobs differ in length", data)
        try:
            rows = [(int(o), None if v is None else float(v), tuple(sorted((t or {}).values(), reverse=True))[:k] if k else ())
                    for o, v, t in zip(offs, vals, tops)]
        except (TypeError, ValueError, AttributeError):
            raise malformed(path, "bad logprobs", data) from None
        return rows[:-1] if self._echo_max_tokens else rows  # drop the token a max_tokens=1 server generated

    # ---------------------------------------------------------------- features
    def blackbox_features(self, prompt: str, response: str) -> dict[str, float]:
        """Features of one (prompt, response) pair that need no model internals.

        At the answer position (the first response token's distribution), with the predictor's
        definitions (`faultlens.predict.case_features`): ``bb.topk_entropy`` (entropy of the
        renormalised top-k over log k), ``bb.top1_logprob``, ``out.top2_margin``; over the whole
        response (SelfCheckGPT's grey-box signals): ``bb.logprob.mean/min`` and the top-k entropy
        ``bb.entropy.mean/max`` in nats; always the lengths and ``bb.response.repeat_frac``.
        Log-probs come from the `generate` call that produced `response`, else from one echo
        request; NaN when the server gives none (``bb.logprobs_available`` = 0), so every row has
        the same keys.
        """
        words = response.split()
        feats = {"prompt.n_chars": float(len(prompt)), "bb.prompt.words": float(len(prompt.split())),
                 "bb.response.chars": float(len(response)), "bb.response.words": float(len(words)),
                 "bb.response.repeat_frac": repeat_fraction(words)}
        tokens = self._response_tokens(prompt, response)
        feats.update(logprob_features(tokens))
        feats["bb.logprobs_available"] = float(tokens is not None)
        return feats

    def _response_tokens(self, prompt: str, response: str) -> list[tuple[float, tuple[float, ...]]] | None:
        with self._lock:
            gen = self._gen_cache.get((prompt, response))
        if gen is not None and gen.tokens:
            return [(t.logprob, t.top) for t in gen.tokens]
        if not response or not self.supports_prompt_logprobs():
            return None
        rows = self.echo_logprobs(prompt + response, max(1, self.top_logprobs))
        return [(v, top) for off, v, top in rows if off >= len(prompt) and v is not None]

    # ---------------------------------------------------------------- HTTP
    def _map(self, fn: Callable[[Any], Any], items: list) -> list:
        return list(self._pool.map(fn, items)) if len(items) > 1 else [fn(x) for x in items]

    def _request(self, method: str, path: str, body: dict | None, retries: int | None = None) -> Any:
        """One JSON request with retries; returns the decoded body or raises FaultlensError (ApiStatusError on HTTP status)."""
        url = self.base_url + path
        retries = self.max_retries if retries is None else retries
        last, last_resp = "", None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last_resp))
            last_resp = None
            try:
                with self._slots:
                    resp = self._client.request(method, path, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s; raise --api-timeout or check the server's load"
                continue
            except httpx.TransportError as exc:
                last = (f"cannot connect ({type(exc).__name__}: {exc or 'no detail'}); start the server or fix --api-base")
                continue
            if resp.status_code in RETRY_STATUS:
                last_resp = resp
                last = f"HTTP {resp.status_code}: {error_message(resp)}"
                continue
            if 400 <= resp.status_code < 500:
                msg = error_message(resp)
                hint = STATUS_HINT.get(resp.status_code, "fix the request options")
                raise ApiStatusError(resp.status_code, msg,
                                     f"Server at {url} rejected {method} {path} (HTTP {resp.status_code}): {msg}; {hint}.")
            if resp.status_code >= 300:
                raise FaultlensError(f"Server at {url} answered HTTP {resp.status_code} ({error_message(resp)}); "
                                     f"is --api-base an OpenAI-compatible URL?")
            try:
                return resp.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                kind = resp.headers.get("content-type", "no content-type")
                raise FaultlensError(f"Server at {url} did not return JSON (HTTP {resp.status_code}, {kind}, starts "
                                     f"{resp.text[:60]!r}); is --api-base an OpenAI-compatible URL (usually ending in /v1)?") from None
        final = f"OpenAI-compatible server at {url} failed after {retries + 1} attempts: {last}."
        if last_resp is not None:
            raise ApiStatusError(last_resp.status_code, error_message(last_resp), final)
        raise FaultlensError(final)

    def _delay(self, attempt: int, resp: httpx.Response | None) -> float:
        """Exponential backoff with a little jitter; a server's Retry-After (seconds) wins."""
        after = resp.headers.get("retry-after") if resp is not None else None
        if after is not None:
            try:
                return min(float(after), self.max_backoff)
            except ValueError:
                pass
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * (1 + 0.1 * random.random())


class ApiStatusError(FaultlensError):
    """The server answered with an HTTP error status (a 4xx, or a 5xx that outlived the retries).

    Callers may fall back on it (drop logprob fields, try another request form); unreachable
    servers and malformed replies raise a plain `FaultlensError` instead.
    """

    def __init__(self, status: int, server_message: str, line: str) -> None:
        super().__init__(line)
        self.status, self.server_message = status, server_message


# -------------------------------------------------------------------- pure helpers (tested directly)
def normalize_base_url(url: str) -> str:
    """``http://host:port`` → ``http://host:port/v1``; a URL with a path is kept as given."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FaultlensError(f"--api-base {url!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1.")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path or '/v1'}"


def sampling_body(sampling: dict[str, Any]) -> dict[str, Any]:
    """HF-style sampling kwargs → OpenAI request fields (greedy = temperature 0 by default)."""
    sampling = dict(sampling)
    do_sample = sampling.pop("do_sample", None)
    unknown = set(sampling) - SAMPLING_KEYS
    if unknown:
        raise FaultlensError(f"Unknown sampling option(s) {sorted(unknown)} for an API model; use {sorted(SAMPLING_KEYS | {'do_sample'})}.")
    sampling.setdefault("temperature", 1.0 if do_sample else 0.0)
    return sampling


def split_pair(prompt: str, continuation: str) -> tuple[str, str]:
    """lm-eval's convention: trailing spaces of the prompt belong to the continuation."""
    if not prompt.strip():
        raise FaultlensError("Empty prompt: every case needs prompt text (check the 'prompt' field).")
    if not continuation:
        raise FaultlensError(f"Empty continuation after prompt {prompt[:40]!r}: give each case a target and foil.")
    ctx = prompt.rstrip(" ")
    return ctx, prompt[len(ctx):] + continuation


def echoes_prompt_logprobs(data: Any, prompt: str) -> bool:
    """Whether an echo reply holds the prompt text and numeric log-probs for its tokens after the first."""
    try:
        choice = data["choices"][0]
        vals = choice["logprobs"]["token_logprobs"]
        return (str(choice["text"]).startswith(prompt) and len(vals) >= 2
                and all(isinstance(v, (int, float)) for v in vals[1:]))
    except (KeyError, IndexError, TypeError):
        return False


def continuation_logprob(whole: list, ctx: list, ctx_chars: int) -> float:
    """Sum of log-probs of `whole`'s tokens after the prompt's own tokenisation.

    `whole` and `ctx` are echo rows (offset, log-prob, top) of prompt+continuation and of the
    prompt alone. When the prompt's tokens are a prefix of the whole's (the usual case) the
    split is by token count, exactly as `HFAdapter.encode_pair`; otherwise (a token straddles the
    boundary) every token ending after the prompt's last character counts.
    """
    n = len(ctx)
    same_prefix = n < len(whole) and [o for o, _, _ in ctx] == [o for o, _, _ in whole[:n]]
    if same_prefix:
        picked = whole[n:]
    else:
        ends = [o for o, _, _ in whole[1:]] + [math.inf]
        picked = [row for row, end in zip(whole, ends) if end > ctx_chars]
    if not picked or any(v is None for _, v, _ in picked):
        raise FaultlensError("The server returned no log-prob for a continuation token; it cannot score this case "
                             "(run the probes in generation mode).")
    return float(sum(v for _, v, _ in picked))
