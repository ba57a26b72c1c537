"""Bad input: one clear error line, a non-zero exit, and nothing already stored is lost."""

from __future__ import annotations

import json
import os

import pytest

from faultlens.models.tiny import save_tiny
from tests.run_cli import run_cli


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny("llama", tmp_path_factory.mktemp("m") / "tiny-llama")


@pytest.fixture
def seeded_store(tmp_path, tiny_dir, capsys):
    """A store that already holds a finished scan; every bad command below must leave it intact."""
    store = tmp_path / "s.sqlite"
    code, _, err = run_cli(["scan", tiny_dir, "--probes", "position", "--n-per-cell", "2", "--store", store,
                            "--run-id", "keep", "--no-features"], capsys)
    assert code == 0, err
    return store


def _one_error_line(code, err, pattern):
    assert code != 0
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:"), err
    assert pattern in " ".join(lines), err


def _still_there(store):
    from faultlens.store import Store

    assert Store(store).count("results", "keep") == 10


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


CASE_LINE = json.dumps({"id": "a", "prompt": "Once upon a time", "target": " a", "foil": " b", "variable": "v", "value": 1})
BAD_INPUTS = {  # name -> (argv builder, expected text in the error line)
    "missing_model": (lambda t, m: ["scan", t / "nope"], "does not exist"),
    "not_a_model": (lambda t, m: ["scan", t], "not a Hugging Face model directory"),
    "malformed_jsonl": (lambda t, m: ["scan", m, "--cases", write(t / "c.jsonl", [CASE_LINE, "{not json"])], "c.jsonl:2: not valid JSON"),
    "missing_field": (lambda t, m: ["scan", m, "--cases", write(t / "c.jsonl", [CASE_LINE, '{"id": "b", "prompt": "x"}'])], "c.jsonl:2: missing field(s) target"),
    "empty_prompt": (lambda t, m: ["scan", m, "--cases", write(t / "c.jsonl", [json.dumps({"id": "e", "prompt": "  ", "target": " a"})])], "empty prompt"),
    "too_long": (lambda t, m: ["scan", m, "--cases", write(t / "c.jsonl", [json.dumps({"id": "l", "prompt": "word " * 400, "target": " a", "foil": " b"})])], "the model's context is 256"),
    "unknown_probe": (lambda t, m: ["scan", m, "--probes", "postion"], "Did you mean: position"),
    "existing_run": (lambda t, m: ["scan", m, "--run-id", "keep"], "already exists; add --resume"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input(case, tmp_path, tiny_dir, seeded_store, capsys):
    build, pattern = BAD_INPUTS[case]
    code, _, err = run_cli([*build(tmp_path, tiny_dir), "--store", seeded_store], capsys)
    _one_error_line(code, err, pattern)
    assert code == 2
    _still_there(seeded_store)


def test_unwritable_store(tmp_path, tiny_dir, capsys):
    target = "/proc/nope/s.sqlite" if os.geteuid() == 0 else "/nope/s.sqlite"
    code, _, err = run_cli(["scan", tiny_dir, "--store", target], capsys)
    _one_error_line(code, err, "Cannot write the run store")
    assert code == 2


def test_unknown_export_format_and_run(seeded_store, tmp_path, capsys):
    code, _, err = run_cli(["export", "keep", "--format", "xls", "--store", seeded_store], capsys)
    _one_error_line(code, err, "Unknown format 'xls'")
    code, _, err = run_cli(["export", "nope", "--store", seeded_store], capsys)
    _one_error_line(code, err, "Unknown run id 'nope'")
    code, out, err = run_cli(["export", "keep", "--format", "csv", "--out", tmp_path / "x", "--store", seeded_store], capsys)
    assert code == 0, err
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "x" / "keep.results.csv")) == 10


def test_nan_weights_are_refused(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    d = save_tiny("gpt2", tmp_path / "nan")
    sd = load_file(d / "model.safetensors")
    k = next(iter(sd))
    sd[k][0] = float("nan")
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    code, _, err = run_cli(["scan", d, "--store", tmp_path / "s.sqlite"], capsys)
    _one_error_line(code, err, "NaN/Inf")
