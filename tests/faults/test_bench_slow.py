"""The full detection matrix (slow): >= 95 % recall per category and zero findings on clean targets."""

import pytest

from faultlens.faults.bench import recall_table, run_matrix


@pytest.mark.slow
def test_full_matrix_recall_and_no_false_positives():
    clean, cells, _ = run_matrix()
    assert all(not found for found in clean.values()), {k: [o.check for o in v] for k, v in clean.items()}
    table = recall_table(cells)
    assert all(r["recall"] >= 0.95 for r in table.values()), table


def test_matrix_on_one_target_subset():
    clean, cells, _ = run_matrix(["reference_causal"], ["MZM", "SDS", "QZV", "POE", "KSB", "VSH"])
    assert not clean["reference_causal"]
    assert all(c.status == "detected" for c in cells), [(c.op, c.status) for c in cells]
