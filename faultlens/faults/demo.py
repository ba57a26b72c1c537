"""Demo step: check the shipped model clean, then plant a causal-mask break and show it caught."""

from __future__ import annotations

from dataclasses import replace

from faultlens.demo import DemoContext, demo_steps


@demo_steps.register("faults")
def step(ctx: DemoContext) -> None:
    """ABNN fault checks on the shipped model: clean run, then a planted fault (MCB) found and removed."""
    from faultlens.faults.checks import run_checks
    from faultlens.faults.inject import plant
    from faultlens.faults.report import to_findings
    from faultlens.faults.target import from_hf
    from faultlens.faults.taxonomy import OPS

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add contention
    try:
        _run(ctx, run_checks, plant, to_findings, from_hf, OPS)
    finally:
        torch.set_num_threads(threads)


def _run(ctx, run_checks, plant, to_findings, from_hf, OPS) -> None:
    target = from_hf(ctx.adapter.model, name=getattr(ctx.adapter, "name", "model"))
    clean = run_checks(target)
    n_fail = sum(o.is_finding for o in clean)
    n_run = sum(o.status != "skip" for o in clean)
    ctx.console.print(f"clean model: {n_run} checks run, {n_fail} finding(s)")
    op = "MCB"
    with plant(target, op):
        planted = run_checks(target, ["causality", "variant_audit", "sdpa_reference"])
    found = [o for o in planted if o.is_finding]
    # Stored as what they are: the shipped model's own checks were clean; these come from a planted fault.
    ctx.store.add_findings([
        replace(f, severity="info", message=f"[planted {op} demo fault] {f.message}", evidence={**f.evidence, "planted": op})
        for f in to_findings(ctx.run_id, found)
    ])
    ctx.console.print(f"planted {op} ({OPS[op].mutation}): caught by {', '.join(o.check for o in found) or 'nothing'}")
    for o in found[:2]:
        ctx.console.print(f"  {o.category} / {o.root_cause}: {o.message}", highlight=False)
    after = run_checks(target, ["causality"])
    ctx.console.print(f"fault removed: causality {after[0].status}")
    ctx.notes["faults"] = {"clean_findings": n_fail, "planted": op, "caught_by": [o.check for o in found]}


step.order = 50
