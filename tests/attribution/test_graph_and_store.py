"""Graph invariants, batched == separate backwards, store artifacts, runner wiring."""

from __future__ import annotations

import numpy as np
import torch

from faultlens.attribution import attribute_failures, attribution_graph, explain, explanation_to_store
from faultlens.attribution.graph import GraphConfig, edge_rows
from faultlens.attribution.patching import lrp_rules
from faultlens.attribution.problem import Problem
from faultlens.attribution.recording import record
from faultlens.attribution.targets import targets
from faultlens.capture import decoder_layers
from faultlens.store import Store
from faultlens.types import Case


def _full_edges(ad, prompt, t, f, variant):
    problem = Problem.build(ad, prompt, t, f)
    model = ad.model
    with lrp_rules(model, variant):
        with record(model) as rec, torch.enable_grad():
            pe = problem.prompt_embeds(model).requires_grad_(True)
            value = problem.run(model, pe, targets.get("contrastive"))
            grads = torch.autograd.grad(value.sum(), rec.states)
        H, G = [s[0].detach() for s in rec.states], [g[0] for g in grads]
        T = problem.n_prompt
        A = edge_rows(decoder_layers(model)[0], H[0], G[1], rec.calls[0], list(range(T)), batch=7)
    R0, R1 = (H[0] * G[0]).sum(-1), (H[1] * G[1]).sum(-1)
    return A.double(), R0.double(), R1.double(), float(value.detach())


def test_edge_matrix_invariants(make_adapter, prompt, pair):
    ad = make_adapter("llama", attn="eager", dtype=torch.float64)
    t, f = pair(ad)
    A, R0, R1, _ = _full_edges(ad, prompt, t, f, "cp-lrp")
    torch.testing.assert_close(A.sum(0), R0, atol=1e-9, rtol=1e-7)  # columns: source relevance
    torch.testing.assert_close(A.sum(1), R1, atol=1e-7, rtol=1e-5)  # rows (cp-lrp, bias-free): target relevance
    assert torch.count_nonzero(torch.triu(A, diagonal=1)) == 0  # causal, also under eager attention
    A2, R0b, _, _ = _full_edges(ad, prompt, t, f, "attnlrp")
    torch.testing.assert_close(A2.sum(0), R0b, atol=1e-9, rtol=1e-7)


def test_batched_graph_equals_separate_backwards(make_adapter, prompt, pair):
    ad = make_adapter("llama", dtype=torch.float64)
    t, f = pair(ad)
    g1 = attribution_graph(ad, prompt, t, f, config=GraphConfig(top_k=6, batch=32))
    g2 = attribution_graph(ad, prompt, t, f, config=GraphConfig(top_k=6, batched=False))
    assert g1["n_backward"] < g2["n_backward"]
    assert [n["id"] for n in g1["nodes"]] == [n["id"] for n in g2["nodes"]]
    w1 = {(e["source"], e["target"]): e["weight"] for e in g1["edges"]}
    w2 = {(e["source"], e["target"]): e["weight"] for e in g2["edges"]}
    assert w1.keys() == w2.keys()
    np.testing.assert_allclose([w1[k] for k in w1], [w2[k] for k in w1], atol=1e-10)
    ids = {n["id"] for n in g1["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in g1["edges"])
    assert max(n["layer"] for n in g1["nodes"]) == 2


def test_store_artifacts_and_failure_wiring(make_adapter, prompt, tmp_path):
    ad = make_adapter("llama")
    store = Store(tmp_path / "s.sqlite")
    run = store.create_run("tiny", {})
    e = explain(ad, prompt, " Mia", " Ben", method="cp-lrp")
    key = explanation_to_store(store, run, "c0", e)
    art = store.get_artifact(run, key)
    assert key == "attribution/c0/cp-lrp"
    assert {"tokens", "relevance", "target", "foil", "method", "faithfulness"} <= art.keys()
    assert len(art["tokens"]) == len(art["relevance"]) and "deletion_aopc" in art["faithfulness"]
    cases = [(Case(id=f"k{i}", prompt=prompt, target=" Mia", foil=foil), m)
             for i, (foil, m) in enumerate([(" Ben", -0.1), (" Tom", -2.0), (" Sue", -1.0), ("", -9.0)])]
    out = attribute_failures(ad, store, run, cases, top_n=2)
    assert [x.foil for x in out] == [" Tom", " Sue"]  # largest |margin| first; no-foil case skipped
    keys = {a["key"] for a in store.list_artifacts(run, "attribution/")}
    assert {"attribution/k1/cp-lrp", "attribution/k1/graph", "attribution/k2/cp-lrp"} <= keys
    graph = store.get_artifact(run, "attribution/k1/graph")
    assert graph["nodes"] and {"source", "target", "weight"} <= graph["edges"][0].keys()
    assert store.get_run(run)["config"]["attribution"]["methods"] == ["cp-lrp"]
