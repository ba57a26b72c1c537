"""OpenAIAdapter against real HTTP servers on 127.0.0.1 — no mocks.

* `local_server`: `python -m faultlens.models.serve_local` serving the shipped stories260k model
  in a subprocess (generation, prompt scoring parity with `HFAdapter`, black-box features).
* small stdlib `http.server` servers in a thread for the failure modes: HTML instead of JSON,
  wrong schema, 503-then-OK, slow replies, a 401, a concurrency counter, and a server that
  generates but ignores ``echo`` / ``logprobs`` (as `transformers serve` does).
* `transformers serve` itself (slow; needs the `openai` and `accelerate` packages).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import torch

from faultlens.errors import FaultlensError
from faultlens.models.openai_api import (NO_PROMPT_LOGPROBS, OpenAIAdapter,
                                         normalize_base_url, repeat_fraction,
                                         sampling_body, topk_entropy)

ZOO = Path(__file__).resolve().parents[2] / "faultlens" / "models" / "zoo" / "stories260k"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def subprocess_server(cmd: list[str], port: int, log: Path, ready_path: str = "/health", before_wait=None):
    """Start `cmd`, run `before_wait()` meanwhile, wait until GET ready_path answers 200; always terminate it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        if before_wait is not None:
            before_wait()  # e.g. load the in-process reference model while the server boots
        while True:  # no wall-clock limit: pytest-timeout guards a hang; a crash ends the wait
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def local_server(tmp_path_factory, request):
    port = free_port()
    cmd = [sys.executable, "-m", "faultlens.models.serve_local", "--model", "stories260k", "--port", str(port)]
    log = tmp_path_factory.mktemp("srv") / "serve_local.log"
    with subprocess_server(cmd, port, log, before_wait=lambda: request.getfixturevalue("hf_generations")) as url:
        yield url


@pytest.fixture(scope="module")
def api(local_server):
    with OpenAIAdapter(local_server, "stories260k", concurrency=2, top_logprobs=20) as ad:
        yield ad


# ------------------------------------------------------------------ tiny stdlib servers for failure modes
class Handler(BaseHTTPRequestHandler):
    """Replies via `self.server.reply(handler, body) -> (status, headers, bytes)`; counts requests."""

    def log_message(self, *a):  # keep test output quiet
        pass

    def _serve(self):
        srv = self.server
        n = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(n) or b"null") if n else None
        with srv.lock:
            srv.count += 1
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
            k = srv.count
        try:
            status, headers, data = srv.reply(self, body, k)
        finally:
            with srv.lock:
                srv.inflight -= 1
        self.send_response(status)
        for h, v in headers.items():
            self.send_header(h, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve


@contextmanager
def stdlib_server(reply):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.reply, srv.lock, srv.count, srv.inflight, srv.max_inflight = reply, threading.Lock(), 0, 0, 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


def jsonr(obj, status=200, headers=None):
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(obj).encode()


def chat_ok(text="hello"):
    return jsonr({"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})


def echo_ignoring(handler, body, k):
    """Generates a fixed text; ignores echo/logprobs like `transformers serve`."""
    if handler.path.endswith("/completions") and "prompt" in (body or {}):
        return jsonr({"choices": [{"index": 0, "text": " the end", "finish_reason": "length", "logprobs": None}]})
    return chat_ok(" the end")


# ------------------------------------------------------------------ the real model server
def test_lists_model_and_rejects_unknown_one(api, local_server):
    assert api.list_models() == ["stories260k"]
    api.check()
    with OpenAIAdapter(local_server, "gpt-9") as bad, pytest.raises(FaultlensError, match="does not list model 'gpt-9'"):
        bad.check()


def hf_greedy(stories, prompt: str, n: int) -> str:
    """Greedy continuation straight from the HF model, decoded relative to the prompt (keeps leading spaces)."""
    ids = stories.encode(prompt)
    out = stories.model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=n, do_sample=False, pad_token_id=stories.pad_id)[0, len(ids):].tolist()
    eos = stories.tokenizer.eos_token_id
    new = out[:out.index(eos)] if eos in out else out
    dec = lambda x: stories.tokenizer.decode(x, skip_special_tokens=True)  # noqa: E731
    return dec(ids + new)[len(dec(ids)):]


GEN_PROMPTS = ["Once upon a time", "Lily and Tom went to the park. Tom", "The cat"]


@pytest.fixture(scope="module")
def hf_generations(stories):
    """(direct HF greedy text, HFAdapter.generate text) for GEN_PROMPTS, computed once."""
    return [hf_greedy(stories, p, 12) for p in GEN_PROMPTS], stories.generate(GEN_PROMPTS, max_new_tokens=12)


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_greedy_generation_matches_hf(local_server, hf_generations, endpoint):
    want, adapter_text = hf_generations
    with OpenAIAdapter(local_server, "stories260k", endpoint=endpoint, concurrency=3) as ad:
        got = ad.generate(GEN_PROMPTS, max_new_tokens=12)
    assert got == want
    # HFAdapter.generate decodes the new tokens alone, which drops a leading SentencePiece space
    assert [g.lstrip() for g in got] == [h.lstrip() for h in adapter_text]


def test_score_matches_hf_adapter(api, stories):
    prompts = ["Once upon a time, there was a girl named", "Tom had a red ball. He gave the ball to",
               "The dog ran to the ", "Once upon a time, there was a girl named"]
    conts = [" Lily", " Sue and her big dog", "park", " Zorp the great"]
    assert api.supports_prompt_logprobs()
    got, want = api.score(prompts, conts), stories.score(prompts, conts)
    assert got == pytest.approx(want, abs=1e-4)
    assert got[0] > got[3]  # and the numbers mean something: the usual name beats a nonsense one


def test_blackbox_features_agree_with_the_model(api, stories):
    prompt = "Once upon a time, there was a boy named"
    gen = api.generate_detailed([prompt], max_new_tokens=8)[0]
    assert len(gen.tokens) > 0 and all(len(t.top) == 20 for t in gen.tokens)
    feats = api.blackbox_features(prompt, gen.text)
    assert feats["bb.logprobs_available"] == 1.0 and feats["bb.response.tokens"] == len(gen.tokens)
    # the mean token log-prob times the count is the response's log-likelihood under the model
    total = feats["bb.logprob.mean"] * feats["bb.response.tokens"]
    assert total == pytest.approx(stories.score([prompt], [gen.text])[0], abs=1e-3)
    # answer-position features equal the white-box definitions computed from the full logits
    with torch.inference_mode():
        lp = torch.log_softmax(stories.forward([prompt])["logits"][0, -1].float(), -1)  # [V]
    top = lp.topk(20).values  # [20]
    pk = torch.softmax(top, -1)
    assert feats["bb.topk_entropy"] == pytest.approx(float(-(pk * pk.log()).sum() / math.log(20)), abs=1e-4)
    assert feats["bb.top1_logprob"] == pytest.approx(float(top[0]), abs=1e-4)
    assert feats["out.top2_margin"] == pytest.approx(float(top[0] - top[1]), abs=1e-4)
    # the lumped-remainder top-k entropy is a lower bound on the true entropy, and close to it here
    true_h = float(-(lp.exp() * lp).sum())
    assert 0.5 * true_h < topk_entropy(gen.tokens[0].top) <= true_h + 1e-4
    # features of a response the adapter did not generate come from an echo request: same keys
    other = api.blackbox_features(prompt, " zorp zorp zorp zorp zorp zorp")
    assert set(other) == set(feats) and other["bb.logprob.mean"] < feats["bb.logprob.mean"]
    assert other["bb.topk_entropy"] == pytest.approx(feats["bb.topk_entropy"], abs=1e-4)  # same answer position
    assert other["bb.response.repeat_frac"] > 0.5 and feats["bb.prompt.words"] == 9


def test_context_overflow_is_one_clear_error(api):
    with pytest.raises(FaultlensError, match="maximum context length is 512"):
        api.generate(["Once upon a time " * 200], max_new_tokens=4)


# ------------------------------------------------------------------ failure modes
def test_unreachable_server_is_one_clear_error():
    port = free_port()  # bound then closed: nothing listens there
    with OpenAIAdapter(f"http://127.0.0.1:{port}", "m", max_retries=2, backoff=0.01) as ad:
        with pytest.raises(FaultlensError) as err:
            ad.generate(["hi"])
    msg = str(err.value)
    assert "\n" not in msg and f"127.0.0.1:{port}/v1" in msg and "after 3 attempts" in msg and "cannot connect" in msg


def test_html_instead_of_json_is_one_clear_error():
    html = lambda h, b, k: (200, {"content-type": "text/html"}, b"<html><body>It works!</body></html>")
    with stdlib_server(html) as (srv, url), OpenAIAdapter(url, "m") as ad:
        with pytest.raises(FaultlensError, match="did not return JSON.*text/html.*<html>"):
            ad.generate(["hi"])
        assert srv.count == 1  # a malformed reply is not retried


def test_wrong_schema_is_one_clear_error():
    with stdlib_server(lambda h, b, k: jsonr({"result": "hi"})) as (_, url), OpenAIAdapter(url, "m") as ad:
        with pytest.raises(FaultlensError, match="malformed /chat/completions response \\(missing 'choices'"):
            ad.generate(["hi"])
        with pytest.raises(FaultlensError, match="malformed /models"):
            ad.list_models()


def test_retries_503_with_backoff_then_succeeds():
    flaky = lambda h, b, k: jsonr({"error": {"message": "overloaded"}}, 503) if k <= 2 else chat_ok("fine")
    with stdlib_server(flaky) as (srv, url), OpenAIAdapter(url, "m", max_retries=3, backoff=0.05) as ad:
        t0 = time.perf_counter()
        assert ad.generate(["hi"]) == ["fine"]
        waited = time.perf_counter() - t0
    assert srv.count == 3 and waited >= 0.05 + 0.1  # two backoffs: 0.05 s, then 0.1 s


def test_gives_up_after_max_retries_and_honours_retry_after():
    busy = lambda h, b, k: jsonr({"error": {"message": "rate limited"}}, 429, {"retry-after": "0"})
    with stdlib_server(busy) as (srv, url), OpenAIAdapter(url, "m", max_retries=2, backoff=30) as ad:
        with pytest.raises(FaultlensError, match="after 3 attempts: HTTP 429: rate limited"):
            ad.generate(["hi"])  # Retry-After: 0 overrides the 30 s backoff
    assert srv.count == 3


def test_client_errors_are_not_retried():
    denied = lambda h, b, k: jsonr({"error": {"message": "Incorrect API key"}}, 401)
    with stdlib_server(denied) as (srv, url), OpenAIAdapter(url, "m", api_key="sk-wrong") as ad:
        with pytest.raises(FaultlensError, match="HTTP 401\\): Incorrect API key; set the key with --api-key-env"):
            ad.generate(["hi"])
    assert srv.count == 1


def test_timeout_then_retry():
    def slow_first(h, b, k):
        if k == 1:
            time.sleep(1.0)
        return chat_ok("late")
    with stdlib_server(slow_first) as (srv, url):
        with OpenAIAdapter(url, "m", timeout=0.3, max_retries=1, backoff=0.01) as ad:
            assert ad.generate(["hi"]) == ["late"]
        with OpenAIAdapter(url, "m", timeout=0.3, max_retries=0) as ad:
            srv.count = 0
            with pytest.raises(FaultlensError, match="timed out after 0.3 s"):
                ad.generate(["hi"])


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_limit(limit):
    def slow(h, b, k):
        time.sleep(0.25)
        return chat_ok(b["messages"][-1]["content"].upper())
    prompts = [f"p{i}" for i in range(9)]
    with stdlib_server(slow) as (srv, url), OpenAIAdapter(url, "m", concurrency=limit) as ad:
        assert ad.generate(prompts) == [p.upper() for p in prompts]  # order kept
    assert srv.max_inflight == limit and srv.count == 9


def test_server_without_prompt_logprobs_says_use_generation_mode():
    with stdlib_server(echo_ignoring) as (srv, url), OpenAIAdapter(url, "m", endpoint="completions") as ad:
        assert ad.generate(["Once"]) == [" the end"]
        with pytest.raises(FaultlensError, match=NO_PROMPT_LOGPROBS):
            ad.score(["Once"], [" upon"])
        n = srv.count
        with pytest.raises(FaultlensError, match=NO_PROMPT_LOGPROBS):
            ad.score(["Once"], [" upon"])
        assert srv.count == n  # capability detected once
        feats = ad.blackbox_features("Once", " the end")
        assert feats["bb.logprobs_available"] == 0.0 and math.isnan(feats["bb.entropy.mean"])
        assert feats["bb.response.words"] == 2


# ------------------------------------------------------------------ pure parts
def test_pure_helpers():
    assert normalize_base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("https://h/openai/v1/") == "https://h/openai/v1"
    with pytest.raises(FaultlensError, match="not an http"):
        normalize_base_url("127.0.0.1:8000")
    assert sampling_body({}) == {"temperature": 0.0}
    assert sampling_body({"do_sample": True, "top_p": 0.9}) == {"temperature": 1.0, "top_p": 0.9}
    with pytest.raises(FaultlensError, match="num_beams"):
        sampling_body({"num_beams": 4})
    assert topk_entropy([math.log(0.5), math.log(0.5)]) == pytest.approx(math.log(2))
    assert topk_entropy([math.log(0.25)] * 2) == pytest.approx(-2 * 0.25 * math.log(0.25) - 0.5 * math.log(0.5))
    assert repeat_fraction("a b c a b c".split()) == pytest.approx(0.25) and repeat_fraction(["a"]) == 0.0


# ------------------------------------------------------------------ a registry server: transformers serve
@pytest.mark.slow
def test_against_transformers_serve(tmp_path, stories):
    pytest.importorskip("openai", reason="transformers serve needs the openai package")
    pytest.importorskip("accelerate", reason="transformers serve needs accelerate on CPU")
    port = free_port()
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--device", "cpu", str(ZOO)]
    with subprocess_server(cmd, port, tmp_path / "transformers_serve.log") as url:
        with OpenAIAdapter(url, str(ZOO), endpoint="completions") as ad:
            ad.check()
            prompts = ["Once upon a time", "The cat"]
            # transformers serve decodes new tokens on their own, which drops SentencePiece's leading
            # space; HFAdapter decodes relative to the prompt and keeps it. Same tokens either way.
            got = [t.lstrip() for t in ad.generate(prompts, max_new_tokens=10)]
            assert got == [t.lstrip() for t in stories.generate(prompts, max_new_tokens=10)]
            assert not ad.supports_prompt_logprobs()  # it ignores echo / logprobs
            with pytest.raises(FaultlensError, match=NO_PROMPT_LOGPROBS):
                ad.score(prompts, [" there", " sat"])


def test_generation_mode_through_the_probe_judges(local_server, hf_generations):
    """The runner's generation path (`probes.judges.generate_chunk`) on a real server: a case whose
    target is the model's own greedy word passes; its twin with target and foil swapped fails."""
    from faultlens.probes.base import Probe
    from faultlens.probes.judges import generate_chunk
    from faultlens.types import Case

    want, _ = hf_generations
    first = [w.split()[0].strip(".,!?") or w.split()[1] for w in want]  # the model's next word
    cases = [Case(f"g/{i}/{k}", p, t, f, "v", k, {}) for i, (p, w) in enumerate(zip(GEN_PROMPTS, first))
             for k, (t, f) in enumerate([(w, "zebra"), ("zebra", w)])]
    with OpenAIAdapter(local_server, "stories260k", endpoint="completions") as ad:
        results = generate_chunk(Probe(), ad, cases, "run", max_new_tokens=6)
    assert [r.passed for r in results] == [True, False] * len(GEN_PROMPTS)
    assert [r.score for r in results] == [1.0, -1.0] * len(GEN_PROMPTS)


# ------------------------------------------------------------------ CLI: faultlens api-check
def test_api_check_cli(local_server, capsys, monkeypatch):
    from tests.run_cli import run_cli

    code, out, err = run_cli(["api-check", "--api-base", local_server, "--api-model", "stories260k",
                              "--api-endpoint", "completions"], capsys)
    assert code == 0, err
    assert "log-prob scoring" in out and "prompt log-probs (echo)" in out
    port = free_port()
    code, _, err = run_cli(["api-check", "--api-base", f"http://127.0.0.1:{port}", "--api-model", "m",
                            "--api-retries", "0"], capsys)
    assert code == 2 and err.startswith("error:") and "cannot connect" in err
    monkeypatch.delenv("FAULTLENS_TEST_KEY", raising=False)
    code, _, err = run_cli(["api-check", "--api-base", local_server, "--api-model", "stories260k",
                            "--api-key-env", "FAULTLENS_TEST_KEY"], capsys)
    assert code == 2 and "FAULTLENS_TEST_KEY" in err and "unset" in err


def test_scan_cli_against_the_local_server(local_server, tmp_path, capsys):
    """`faultlens scan --api-base URL` probes a black-box model end to end and stores its results."""
    from faultlens.store import Store
    from tests.run_cli import run_cli

    store = tmp_path / "s.sqlite"
    code, out, err = run_cli(["scan", "stories260k", "--api-base", local_server, "--api-endpoint", "completions",
                              "--probes", "position", "--n-per-cell", "3", "--run-id", "api", "--store", store], capsys)
    assert code == 0, err
    st = Store(store)
    assert st.count("results", "api") == 15
    cfg = st.get_run("api")["config"]
    assert cfg["score_mode"] == "score" and cfg["api"]["base"] == local_server and "key" not in str(cfg["api"]).lower().replace("key_env", "")
