"""What "the same results" means across executors: every row but its run id and row id, in a fixed order."""

from __future__ import annotations

# A small two-probe scan: 30 position cases + 12 option_order cases per model.
SCAN_ARGS = ["--probes", "position,option_order", "--n-per-cell", "6", "--chunk", "4", "--shard-size", "8"]


def results_table(store, run_ids):
    """Results of the runs keyed by what identifies a row apart from its run id, sorted."""
    df = store.to_pandas("results", list(run_ids)).drop(columns=["id", "run_id"])
    df["detail"] = df["detail"].map(lambda d: sorted(d.items()))
    return df.sort_values(["model", "probe", "case_id", "metric"]).reset_index(drop=True)


def features_table(store, run_ids):
    runs = {r: store.get_run(r)["model"] for r in run_ids}
    df = store.to_pandas("features", list(run_ids)).drop(columns=["id"])
    df["model"] = df.pop("run_id").map(runs)
    return df.sort_values(["model", "case_id", "name"]).reset_index(drop=True)
