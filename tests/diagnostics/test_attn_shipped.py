"""On the shipped TinyStories model: faultlens's sink mass equals a straightforward computation
from HF's own `output_attentions=True`; the CLI stores features, artifacts and findings."""

import json

import torch
from typer.testing import CliRunner

from faultlens.diagnostics.analyze import AnalyzeConfig, analyze, attention_features
from faultlens.diagnostics.collect import CollectConfig
from faultlens.models.hf import HFAdapter

STORY = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
         "One day, she saw a big, red ball. She wanted to play with it, but it was too high. Lily asked "
         "her mom for help. Her mom smiled and got the ball down. Lily said thank you and they played together.")


def test_sink_mass_matches_output_attentions(stories):
    eager = HFAdapter.load("stories260k", attn_implementation="eager")
    ids = eager.tokenize_batch([STORY])
    n = ids["input_ids"].shape[1]
    assert 90 <= n <= 130
    with torch.inference_mode():
        atts = eager.model(**ids, output_attentions=True).attentions  # L × [1, H, n, n]
    # independent: mean over heads and over all queries i >= 0 of A[i, 0] (every query sees position 0)
    ref = torch.stack([a[0, :, :, 0].mean() for a in atts])
    s = analyze(stories, [STORY], AnalyzeConfig(skip_loss=False))  # sdpa model, streamed
    assert torch.allclose(s.sink_mass.mean(-1), ref, atol=1e-5)
    # and the whole per-position profile of layer 1
    ref_prof = atts[1][0].sum(1) / torch.arange(n, 0, -1)  # [H, n]: column sum / viewers
    assert torch.allclose(s.absolute[1, :, :n], ref_prof, atol=1e-5)
    f = attention_features(stories, STORY, key_spans=(46, 51), cfg=CollectConfig(residual=False))
    assert abs(f["attn.sink_mass.L1"] - float(ref[1])) < 1e-5
    last_on_span = atts[2][0, :, -1]  # [H, n]
    tok = stories.tokenizer(STORY, return_offsets_mapping=True)["offset_mapping"]
    span = [j for j, (a, b) in enumerate(tok) if b > a and a < 51 and b > 46]
    assert abs(f["attn.key_span_mass.L2"] - float(last_on_span[:, span].sum(-1).mean())) < 1e-5


def test_cli_attention_stores_everything(tmp_path):
    from faultlens.cli import app
    from faultlens.store import Store

    data = tmp_path / "t.jsonl"
    data.write_text(json.dumps({"id": "c1", "text": STORY, "key_span": [46, 51]}) + "\n"
                    + json.dumps({"id": "c2", "text": "Tom had a dog named Max. Max liked to run."}) + "\n")
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(app, ["attention", "stories260k", "--file", str(data), "--store", str(db), "--layers", "0,2"])
    assert r.exit_code == 0, r.output
    st = Store(db)
    run_id = st.runs()["run_id"].iloc[0]
    feats = st.to_pandas("features", run_id)
    names = set(feats["name"])
    assert {"attn.entropy.L0.H0", "attn.sink_mass.L2.H7", "resid.token_uniformity.L2", "lazy.cos.L0"} <= names
    case = feats[feats["case_id"] == "c1"]
    assert {"attn.entropy.mean.L0", "attn.sink_mass.L2", "attn.key_span_mass.L2"} <= set(case["name"])
    assert "attn.key_span_mass.L2" not in set(feats[feats["case_id"] == "c2"]["name"])
    summ = st.get_artifact(run_id, "attention/summary")
    assert summ["layers"] == 2 and len(summ["entropy"][0]) == 8
    heat = st.get_artifact(run_id, "attention/c1/L2")
    assert heat.shape[0] == 8 and heat.shape[1] == heat.shape[2]
    bad = CliRunner().invoke(app, ["attention", "stories260k", "--text", "hi", "--file", str(data), "--store", str(db)])
    assert bad.exit_code != 0
