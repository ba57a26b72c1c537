"""Demo step: fit the failure predictor on the demo run and print its honest evaluation."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps


@demo_steps.register("predictor")
def predictor_step(ctx: DemoContext) -> None:
    """Grouped-CV failure prediction on the demo run's cases vs the dummy and black-box baselines."""
    from faultlens.commands.predict import print_eval
    from faultlens.errors import FaultlensError
    from faultlens.predict.dataset import load_cases
    from faultlens.predict.evaluate import EvalConfig, evaluate

    try:
        data = load_cases(ctx.store, [ctx.run_id])
        ev = evaluate(data, EvalConfig(n_boot=300 if ctx.fast else 1000, n_repeats=3))
    except FaultlensError as exc:  # e.g. a --steps selection without the probe step
        ctx.console.print(f"[yellow]predictor skipped:[/] {exc}", highlight=False)
        return
    print_eval(ev)
    ctx.store.put_artifact(ctx.run_id, "predictor/eval", ev)
    ctx.notes["predictor_eval"] = ev


predictor_step.order = 70
