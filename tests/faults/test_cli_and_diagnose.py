"""`faultlens check` exit codes / JSON / store, and the diagnoser's symptom → cause ranking."""

import json
import sys

import pytest

from faultlens.faults.diagnose import diagnose
from faultlens.store import open_store

FACTORY = '''
from faultlens.faults.targets import reference_causal
from faultlens.faults.inject import plant

def good():
    return reference_causal()

def leaky():
    m = reference_causal()
    plant(m, "MCB")  # a causal-mask break
    return m

def raises():
    raise RuntimeError("boom")

class Odd(__import__("torch").nn.Module):
    def forward(self, q, k, v):
        return q

def odd():
    return Odd()
'''


def _cli(args, capsys):
    from faultlens import cli

    old = sys.argv
    sys.argv = ["faultlens", *args]
    try:
        with pytest.raises(SystemExit) as e:
            cli.main()
            raise SystemExit(0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def test_check_cli_exit_codes_json_and_store(tmp_path, capsys):
    f = tmp_path / "mods.py"
    f.write_text(FACTORY)
    db = str(tmp_path / "s.sqlite")
    code, out, _ = _cli(["check", f"{f}:good", "--json", "--store", db], capsys)
    assert code == 0 and out.strip() == ""
    code, out, _ = _cli(["check", f"{f}:leaky", "--json", "--store", db], capsys)
    assert code == 1
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert {"category", "root_cause", "check", "evidence", "suggestion"} <= set(rows[0])
    assert "causality" in {r["check"] for r in rows}
    st = open_store(db)
    df = st.to_pandas("findings")
    assert "check:causality" in set(df.source) and "Attention Masking" in set(df.category)
    for bad, needle in ((f"{tmp_path}/nope.py:good", "does not exist"), (f"{f}:raises", "raised RuntimeError"),
                        (f"{f}:odd", "not supported"), (f"{f}:missing", "no callable")):
        code, _, err = _cli(["check", bad, "--store", db], capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("symptom, category, root_cause", [
    ("attention mass on padded keys", "Attention Masking", "Mask Application"),
    ("cached decoding differs from the full forward", "KV Cache", None),
    ("loss falls but the output does not move", "QKV Projection", "Dynamic Parameter Registration"),
    ("NaN in the scores under fp16 autocast", "Attention Score", "Precision Handling"),
])
def test_diagnose_links(symptom, category, root_cause):
    top = diagnose(symptom)[0]
    assert top["category"] == category and top["reasons"]
    if root_cause:
        assert top["root_cause"] == root_cause


def test_diagnose_from_check_evidence_and_log():
    ranked = diagnose(findings=[{"check": "kv_cache_equality", "message": "differs from position 5"}])
    assert ranked[0]["category"] == "KV Cache"
    assert diagnose(log="step 1 loss 2.5\nstep 2 loss nan\n")[0]["root_cause"] == "Precision Handling"
    assert diagnose("the weather is nice") == []
