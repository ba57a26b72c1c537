"""The guard against a real uvicorn server on 127.0.0.1 with a real httpx client.

The predictor is fitted on features the real extractors compute for real prompts, with a planted
label ("fails" = long prompt), so the known answer is: long prompts get high risk and are
flagged, short ones are not.
"""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import numpy as np
import pytest

from faultlens.errors import FaultlensError
from faultlens.predict.guard import GuardConfig, build_app
from faultlens.predict.predictor import FailurePredictor
from faultlens.predict.risk import RiskScorer
from faultlens.predict.serve import serve_in_thread

SHORT = ["Tom had a ball.", "Sue ran home.", "The cat sat.", "Ben saw a dog.", "Mia was happy.", "It was a sunny day."]
LONG = [" ".join(["Once upon a time there was a little girl who liked to play in the park with her dog."] * k) for k in (4, 5, 6)]
LONG += [" ".join(["Tom and Sue went to the big store to buy a red ball and a blue hat for the party."] * k) for k in (4, 5, 6)]


@pytest.fixture(scope="module")
def scorer(adapter):
    from faultlens.predict.case_features import internal_features

    prompts = SHORT + LONG
    import pandas as pd

    X = pd.DataFrame(internal_features(adapter, prompts))
    X = X[["prompt.n_chars", "bb.topk_entropy", "resid.norm.L2"]]
    y = np.array([False] * len(SHORT) + [True] * len(LONG))
    return RiskScorer(adapter, FailurePredictor(C=10.0).fit(X, y), top_k=3)


@pytest.fixture(scope="module")
def url(adapter, scorer):
    with serve_in_thread(build_app(adapter, scorer, GuardConfig(threshold=0.5, max_tokens_cap=32))) as u:
        yield u


@pytest.fixture(scope="module")
def refusing_url(adapter, scorer):
    with serve_in_thread(build_app(adapter, scorer, GuardConfig(threshold=0.5, refuse=True))) as u:
        yield u


def test_completion_returns_text_risk_and_top_features(url):
    r = httpx.post(f"{url}/v1/completions", json={"prompt": "Tom had a ball.", "max_tokens": 8}, timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"]
    fl = body["faultlens"]
    assert 0 <= fl["risk"] < 0.5 and fl["flagged"] is False and fl["refused"] is False
    assert len(fl["top_features"]) == 3 and {"name", "value", "contribution"} <= set(fl["top_features"][0])
    assert fl["timing_ms"]["risk"] > 0 and fl["timing_ms"]["generate"] > 0
    assert body["usage"]["completion_tokens"] >= 1


def test_long_prompt_is_flagged_with_length_as_top_reason(url):
    prompt = " ".join(["Lily and her mom went to the park to see the big green trees and the birds."] * 5)
    r = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": prompt}], "max_tokens": 4}, timeout=60)
    fl = r.json()["faultlens"]
    assert r.status_code == 200 and fl["flagged"] and fl["risk"] >= 0.5
    assert r.json()["choices"][0]["message"]["content"]  # flagged but not refused: still generated


def test_refusing_guard_does_not_generate_for_flagged(refusing_url):
    prompt = " ".join(["Lily and her mom went to the park to see the big green trees and the birds."] * 5)
    r = httpx.post(f"{refusing_url}/v1/chat/completions", json={"messages": [{"role": "user", "content": prompt}]}, timeout=60)
    ch = r.json()["choices"][0]
    assert r.status_code == 200 and ch["finish_reason"] == "content_filter"
    assert ch["message"]["content"] is None and "risk" in ch["message"]["refusal"]
    ok = httpx.post(f"{refusing_url}/v1/completions", json={"prompt": "Sue ran home.", "max_tokens": 4}, timeout=60)
    assert ok.json()["choices"][0]["finish_reason"] in ("length", "stop") and not ok.json()["faultlens"]["refused"]


@pytest.mark.parametrize("path,payload,status,param", [
    ("/v1/completions", {"max_tokens": 4}, 400, "prompt"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": 0}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": 999}, 400, None),
    ("/v1/completions", {"prompt": "   "}, 400, None),
    ("/v1/completions", {"prompt": "Hi", "stream": True}, 400, None),
    ("/v1/completions", {"prompt": ["a", "b"]}, 400, None),
    ("/v1/completions", {"prompt": "Hi", "temperature": -1}, 400, "temperature"),
    ("/v1/completions", {"prompt": "Hi", "model": "gpt-4"}, 404, None),
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, 400, None),
    ("/v1/nothing", {"prompt": "Hi"}, 404, None),
])
def test_bad_requests_get_json_4xx_and_server_survives(url, path, payload, status, param):
    r = httpx.post(f"{url}{path}", json=payload, timeout=60)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["message"] and err["code"] == status
    if param:
        assert param in (err["param"] or "")
    assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "ok"


def test_malformed_json_and_wrong_method(url):
    r = httpx.post(f"{url}/v1/completions", content=b"{not json", headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/completions", timeout=30).status_code == 405
    assert httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"] == "stories260k"


def test_short_load_sequential_and_concurrent(url):
    """20 sequential + 5 concurrent requests, no errors (the full 200/20 run is benchmarks/bench_guard.py)."""
    with httpx.Client(base_url=url, timeout=120) as c:
        for i in range(20):
            r = c.post("/v1/completions", json={"prompt": SHORT[i % len(SHORT)], "max_tokens": 4})
            assert r.status_code == 200 and r.json()["faultlens"]["risk"] is not None

    def one(i):
        return httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": SHORT[i]}], "max_tokens": 4}, timeout=120)

    with cf.ThreadPoolExecutor(5) as ex:
        assert [r.status_code for r in ex.map(one, range(5))] == [200] * 5


def test_scorer_refuses_predictor_needing_key_span_features(adapter):
    import pandas as pd

    X = pd.DataFrame({"key.distance": [1.0, 2.0, 3.0, 4.0], "prompt.n_chars": [1.0, 2.0, 3.0, 4.0]})
    est = FailurePredictor().fit(X, np.array([False, False, True, True]))
    with pytest.raises(FaultlensError, match="--features serve"):
        RiskScorer(adapter, est)
