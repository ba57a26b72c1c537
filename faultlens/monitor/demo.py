"""Demo step: one pathological-vs-mitigated training pair with the monitor's findings."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps


@demo_steps.register("monitor")
def step(ctx: DemoContext) -> None:
    """Train the entropy-collapse organism (lr 3e-2) and its QK-LayerNorm twin under the monitor."""
    import torch

    from faultlens.organisms.recipes import recipes, run_twin

    torch.set_flush_denormal(True)  # huge attention logits otherwise hit slow denormal paths
    recipe = recipes.get("entropy_collapse")
    steps = 60 if ctx.fast else recipe.train.steps
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
