"""Demo step: fit the failure predictor on the demo run and print its honest evaluation."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps

SUMMARY_KEYS = ("auroc", "auroc_ci", "blackbox_auroc", "blackbox_auroc_ci", "dummy_auroc", "delta_vs_blackbox",
                "within_family_auroc", "within_family_blackbox_auroc", "grouping", "n_groups", "verdict")


@demo_steps.register("predictor")
def predictor_step(ctx: DemoContext) -> None:
    """Grouped-CV failure prediction on the demo run's cases vs the dummy and black-box baselines.

    The stored `predictor/eval` is the strictest split the run allows (held-out probe families
    when it has >= 3); the held-out-template split (unseen minimal sets of seen families) is
    printed beside it and kept under ``template_cv``.
    """
    from faultlens.commands.predict import print_eval
    from faultlens.errors import FaultlensError
    from faultlens.predict.dataset import load_cases
    from faultlens.predict.evaluate import EvalConfig, evaluate

    n_boot = 200 if ctx.fast else 500  # keeps the step near its ~20 s budget on 2 shared cores
    try:
        data = load_cases(ctx.store, [ctx.run_id])
        ev = evaluate(data, EvalConfig(n_boot=n_boot, n_repeats=2))
    except FaultlensError as exc:  # e.g. a --steps selection without the probe step
        ctx.console.print(f"[yellow]predictor skipped:[/] {exc}", highlight=False)
        return
    print_eval(ev, title=f"failure predictor, folds grouped by {ev['grouping']} (out-of-fold)", out=ctx.console)
    if ev["grouping"] == "family":
        tv = evaluate(data, EvalConfig(group_by="template", n_boot=n_boot, importance=False))
        print_eval(tv, title="same, folds grouped by template (unseen minimal sets of seen families)", top=0, out=ctx.console)
        ev["template_cv"] = {k: tv[k] for k in SUMMARY_KEYS if k in tv}
    ctx.store.put_artifact(ctx.run_id, "predictor/eval", ev)
    ctx.notes["predictor_eval"] = ev


predictor_step.order = 70
