"""Demo step: one pathological-vs-mitigated training pair with the monitor's findings."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps


@demo_steps.register("monitor")
def step(ctx: DemoContext) -> None:
    """Train the entropy-collapse organism (lr 3e-2) and its QK-LayerNorm twin under the monitor
    (100 steps each, about 5 s of single-core CPU per twin; collapse fires at step 70)."""
    import torch

    from faultlens.organisms.recipes import recipes

    torch.set_flush_denormal(True)  # huge attention logits otherwise hit slow denormal paths
    recipe = recipes.get("entropy_collapse")
    steps = recipe.train.steps  # already the shortest run where both findings fire (step 30 / 70)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer d64 model gains nothing from intra-op threads
    try:
        _pair(ctx, recipe, steps)
    finally:
        torch.set_num_threads(threads)


def _pair(ctx: DemoContext, recipe, steps: int) -> None:
    """Run the pathological twin, then the mitigated one, and print their expected findings."""
    from faultlens.organisms.recipes import run_twin

    for mitigated in (False, True):
        label = f"{recipe.name} ({recipe.mitigation})" if mitigated else f"{recipe.name} (pathological)"
        out, _, mon = run_twin(recipe, mitigated, store=ctx.store, run_id=ctx.run_id, steps=steps)
        nums = out.numbers
        ctx.console.print(
            f"[bold]{label}[/]: {steps} steps in {out.seconds:.1f}s, val loss {out.val_loss:.3f}, "
            f"min head entropy {nums.get('attn.entropy.min', float('nan')):.3f}, "
            f"max attention logit {nums.get('attn.max_logit', float('nan')):.1f}")
        hits = [f for f in mon.findings if f.category in recipe.expected]
        for f in hits:
            ctx.console.print(f"  [red]{f.category}[/] at step {f.evidence['step']}: {f.message.split(' Likely')[0]}",
                              highlight=False)
        if not hits:
            ctx.console.print("  [green]no entropy-collapse / logit-growth findings[/]")
        ctx.notes[f"monitor.{'mitigated' if mitigated else 'pathological'}"] = out.fired


step.order = 40
