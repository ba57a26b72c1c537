"""`faultlens predict fit|eval|score`: train, evaluate and apply the failure predictor."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from faultlens.commands.common import ModelArg, StoreOpt, console, load_adapter

predict_app = typer.Typer(help="Predict failures from internal features: fit, evaluate, score.", no_args_is_help=True)

FeaturesOpt = typer.Option("all", "--features", help="Feature set: all, serve (no key-span features), internal, blackbox.")
EstimatorOpt = typer.Option("logistic", "--model", help="Predictor model: logistic (default) or gbm.")


def _fmt(ev: dict, key: str) -> str:
    v, ci = ev.get(key), ev.get(f"{key}_ci")
    if v is None:
        return "-"
    return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def print_eval(ev: dict, title: str = "failure predictor (grouped CV, out-of-fold)", top: int = 8, out=None) -> None:
    """The evaluation table (predictor vs baselines), the verdict, and what the features capture."""
    con = out or console
    t = Table(title=title)
    for col in ("model", "features", "AUROC [95% CI]", "AUPRC [95% CI]", "Brier"):
        t.add_column(col)
    rows = [("predictor", "", ev.get("feature_set", "")), ("black-box", "blackbox_", ev.get("baseline_set", "blackbox")),
            ("dummy (prior)", "dummy_", "-")]
    for name, p, fs in rows:
        if f"{p}auroc" in ev:
            t.add_row(name, str(fs), _fmt(ev, f"{p}auroc"), _fmt(ev, f"{p}auprc"), f"{ev[f'{p}brier']:.3f}")
    con.print(t)
    setup = ev.get("grouping")
    if setup:
        con.print(f"{ev['n_cases']} cases, {ev['n_failures']} failures; {ev['n_folds']} folds grouped by "
                      f"{setup} ({ev['n_groups']} groups); {ev['n_features']} features", highlight=False)
    con.print(f"[bold]verdict:[/] {ev['verdict']}", highlight=False)
    if "within_family_auroc" in ev:
        con.print(f"mean AUROC inside each probe family (no family base-rate effect): predictor "
                      f"{ev['within_family_auroc']:.3f}, black-box {ev.get('within_family_blackbox_auroc', float('nan')):.3f}", highlight=False)
    for key, label, fmt in (("importance", "permutation importance (held-out AUROC drop)", "{:+.3f}"),
                            ("univariate", "single-feature AUROC (distance from 0.5)", "{:.3f}")):
        vals = ev.get(key) or {}
        score = (lambda kv: -abs(kv[1] - 0.5)) if key == "univariate" else (lambda kv: -kv[1])
        best = sorted(vals.items(), key=score)[:top]
        if best:
            con.print(f"{label}: " + ", ".join(f"{k} {fmt.format(v)}" for k, v in best), highlight=False)


def _estimator(model: str, C: float):
    from faultlens.predict.predictor import FailurePredictor, predictor_models

    predictor_models.get(model)  # unknown names fail with a suggestion
    return FailurePredictor(model=model, C=C)


def register(app: typer.Typer) -> None:
    app.add_typer(predict_app, name="predict")


@predict_app.command("fit")
def fit(
    run_ids: List[str] = typer.Argument(..., help="Runs whose results and features to learn from."),
    out: Path = typer.Option(Path("predictor.skops"), "--out", "-o", help="Where to write the fitted predictor (skops)."),
    features: str = typer.Option("serve", "--features", help="Feature set; 'serve' (default) works with the guard."),
    model: str = EstimatorOpt,
    C: float = typer.Option(1.0, "--C", help="Inverse regularisation strength."),
    store: Optional[str] = StoreOpt,
) -> None:
    """Fit the failure predictor on RUN_IDs and save it with skops."""
    from faultlens.errors import FaultlensError
    from faultlens.predict import persist
    from faultlens.predict.dataset import load_cases
    from faultlens.predict.feature_sets import select
    from faultlens.store import open_store

    data = load_cases(open_store(store), run_ids)
    cols = select(features, data.X.columns)
    if not cols:
        raise FaultlensError(f"Feature set {features!r} matches none of the stored features.")
    if data.y.all() or not data.y.any():
        raise FaultlensError("The runs have only failures or only passes; a predictor needs both.")
    est = _estimator(model, C).fit(data.X[cols], data.y)
    est.info_ = {"runs": list(run_ids), "feature_set": features, "n_cases": int(len(data)), "n_failures": int(data.y.sum()),
                 "models": sorted(map(str, data.meta["model"].unique())), "fitted": datetime.now(timezone.utc).isoformat()}
    path = persist.save(est, out)
    console.print(f"fitted {model} on {len(data)} cases ({int(data.y.sum())} failures), {len(cols)} features → [bold]{path}[/]")
    console.print("evaluate it honestly with `faultlens predict eval " + " ".join(run_ids) + "`", highlight=False)


@predict_app.command("eval")
def eval_(
    run_ids: List[str] = typer.Argument(..., help="Runs to cross-validate on (grouped by probe family or template)."),
    features: str = FeaturesOpt,
    baseline: str = typer.Option("blackbox", "--baseline", help="Feature set of the baseline predictor."),
    group_by: str = typer.Option("auto", "--group-by", help="auto, family or template."),
    model: str = EstimatorOpt,
    C: float = typer.Option(1.0, "--C"),
    transfer_to: Optional[List[str]] = typer.Option(None, "--transfer-to", help="Also fit on RUN_IDs and test on these runs (e.g. another model's)."),
    save: bool = typer.Option(False, "--save", help="Store the evaluation as artifact predictor/eval of the first run."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed"),
    store: Optional[str] = StoreOpt,
) -> None:
    """Grouped cross-validation of the predictor vs the black-box and dummy baselines."""
    from faultlens.predict.dataset import load_cases
    from faultlens.predict.evaluate import EvalConfig, evaluate, transfer
    from faultlens.store import open_store

    st = open_store(store)
    data = load_cases(st, run_ids)
    cfg = EvalConfig(features=features, baseline=baseline, group_by=group_by, n_boot=n_boot, seed=seed,
                     estimator=_estimator(model, C))
    with console.status("cross-validating …"):
        ev = evaluate(data, cfg)
    print_eval(ev)
    if transfer_to:
        tr = transfer(data, load_cases(st, transfer_to), cfg)
        print_eval(tr, title=f"transfer: fit on {', '.join(tr['train_models'])}, test on {', '.join(tr['test_models'])}")
        ev["transfer"] = tr
    if save:
        st.put_artifact(run_ids[0], "predictor/eval", ev)
        console.print(f"stored as artifact predictor/eval of run {run_ids[0]}")


@predict_app.command("score")
def score(
    model: str = ModelArg,
    prompt: List[str] = typer.Option(..., "--prompt", "-p", help="Prompt to score (repeatable)."),
    predictor: Path = typer.Option(..., "--predictor", help="A predictor file from `faultlens predict fit`."),
    top: int = typer.Option(5, "--top", help="How many contributing features to show."),
) -> None:
    """Predicted failure risk of MODEL on each --prompt, with the features that drive it."""
    from faultlens.predict import persist
    from faultlens.predict.risk import RiskScorer

    est = persist.load(predictor)
    scorer = RiskScorer(load_adapter(model), est, top_k=top)
    for p, r in zip(prompt, scorer.score(prompt)):
        console.print(f"[bold]risk {r.risk:.3f}[/]  {p[:80]!r}", highlight=False)
        for f in r.top:
            console.print(f"    {f['name']:<28} value {f['value']!s:<12} log-odds {f['contribution']:+.3f}", highlight=False)
