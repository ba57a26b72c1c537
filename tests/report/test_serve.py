"""The serve app: JSON API, 404s, read-only, loopback only, no path escapes the store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from faultlens.report import serve as serve_mod
from faultlens.report.serve import create_app


@pytest.fixture(scope="module")
def client(filled):
    store, _ = filled
    return TestClient(create_app(store), base_url="http://127.0.0.1")


def test_lists_runs_and_one_run(client):
    runs = client.get("/api/runs").json()
    assert {r["run_id"] for r in runs} >= {"rich", "other", "empty"}
    one = client.get("/api/runs/rich").json()
    assert one["model"] == "stories260k" and one["counts"]["results"] == 2 * 40 * (3 + 2)


def test_results_findings_features_events_artifacts(client):
    res = client.get("/api/runs/rich/results", params={"probe": "position", "metric": "correct", "limit": 5}).json()
    assert res["total"] == 120 and len(res["items"]) == 5 and res["items"][0]["probe"] == "position"
    assert "prompt" in res["items"][0]["detail"]
    found = client.get("/api/runs/rich/findings", params={"source": "monitor:loss_spike"}).json()
    assert found["total"] == 1 and found["items"][0]["evidence"]["step"] == 300
    feats = client.get("/api/runs/rich/features", params={"name": "resid.norm.L"}).json()
    assert feats["total"] == 2 * 5
    ev = client.get("/api/runs/rich/events", params={"name": "loss"}).json()
    assert ev["total"] == 100
    index = client.get("/api/runs/rich/artifacts", params={"prefix": "attention/case-1/"}).json()
    assert [a["key"] for a in index] == [f"attention/case-1/L{i}" for i in range(4)]
    art = client.get("/api/runs/rich/artifacts/attention/case-1/L1").json()
    assert art["kind"] == "array" and len(art["value"]) == 4 and len(art["value"][0]) == 12
    assert max(row[0] for row in art["value"][2]) > 0.9  # the planted sink head attends to token 0


def test_unknown_run_is_404_json(client):
    for path in ("/api/runs/nope", "/api/runs/nope/results", "/api/runs/nope/artifacts/x"):
        r = client.get(path)
        assert r.status_code == 404 and "Unknown run id 'nope'" in r.json()["detail"]
    r = client.get("/runs/nope")
    assert r.status_code == 404 and "no run" in r.text


@pytest.mark.parametrize("path", [
    "/api/runs/rich/artifacts/../../../../etc/passwd",
    "/api/runs/rich/artifacts/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/runs/rich/artifacts//etc/passwd",
    "/api/runs/..%2f..%2f..%2fetc%2fpasswd",
    "/runs/..%2F..%2Fetc%2Fpasswd",
    "/static/../../../../etc/passwd",
    "/static/..%2f..%2f..%2fetc%2fpasswd",
])
def test_paths_cannot_read_files_outside_the_store(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text


def test_api_is_read_only_and_documented(client, filled):
    store, _ = filled
    before = {t: store.count(t) for t in ("runs", "results", "findings", "artifacts")}
    schema = client.get("/openapi.json").json()
    assert "/api/runs/{run_id}/results" in schema["paths"]
    assert all(set(ops) == {"get"} for ops in schema["paths"].values())
    assert client.post("/api/runs", json={}).status_code == 405
    assert client.delete("/api/runs/rich").status_code == 405
    client.get("/runs/rich")
    assert {t: store.count(t) for t in before} == before


def test_foreign_host_header_is_refused(client):
    assert client.get("/api/runs", headers={"host": "evil.example"}).status_code == 400


def test_serve_binds_loopback_by_default(filled, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    serve_mod.serve(filled[0])
    assert seen["host"] == "127.0.0.1"


def test_index_lists_runs_and_escapes(client):
    page = client.get("/").text
    assert 'href="/runs/rich"' in page and "stories15M" in page
    assert client.get("/docs").status_code == 404  # Swagger UI would pull scripts from a CDN
    assert client.get("/static/plotly.min.js").headers["content-type"].startswith("application/javascript")
