"""Wire format of OpenAI-compatible responses: token log-prob records, parsing, error text.

Kept apart from the adapter (transport, retries, concurrency) so each reads on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from faultlens.errors import FaultlensError


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, log-prob, and the top alternatives' log-probs."""

    token: str
    logprob: float
    top: tuple[float, ...] = ()


def parse_chat_logprobs(lp: Any, path: str, data: Any) -> tuple[TokenLogprob, ...]:
    """``choices[0].logprobs.content`` of a chat reply → tokens (empty when absent)."""
    content = (lp or {}).get("content") if isinstance(lp, dict) else None
    if not content:
        return ()
    try:
        return tuple(TokenLogprob(str(c["token"]), float(c["logprob"]),
                                  tuple(sorted((float(a["logprob"]) for a in c.get("top_logprobs") or []), reverse=True)))
                     for c in content)
    except (KeyError, TypeError, ValueError):
        raise malformed(path, "bad logprobs.content", data) from None


def parse_completion_logprobs(lp: Any, path: str, data: Any) -> tuple[TokenLogprob, ...]:
    """``choices[0].logprobs`` of a legacy completion → tokens (empty when absent)."""
    if not isinstance(lp, dict) or not lp.get("token_logprobs"):
        return ()
    tops = lp.get("top_logprobs") or [None] * len(lp["token_logprobs"])
    try:
        return tuple(TokenLogprob(str(t), float(v), tuple(sorted((float(x) for x in (top or {}).values()), reverse=True)))
                     for t, v, top in zip(lp.get("tokens") or [""] * len(tops), lp["token_logprobs"], tops) if v is not None)
    except (TypeError, ValueError, AttributeError):
        raise malformed(path, "bad logprobs", data) from None


def error_message(resp: httpx.Response) -> str:
    """The server's own error text: OpenAI ``{"error": {"message"}}``, FastAPI ``{"detail"}``, or raw text."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:120].strip() or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
        if data.get("detail") or err:
            return str(data.get("detail") or err)[:200]
    return json.dumps(data)[:120]


def _field(obj: Any, key: str | int, path: str, data: Any) -> Any:
    """`obj[key]` or one clear malformed-response error."""
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError):
        raise malformed(path, f"missing {key!r}", data) from None


def malformed(path: str, what: str, data: Any) -> FaultlensError:
    """The one error line for a JSON reply of the wrong shape."""
    return FaultlensError(f"Server returned a malformed {path} response ({what}; got {json.dumps(data)[:80]}); "
                          f"is it an OpenAI-compatible API?")
