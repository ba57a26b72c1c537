"""Demo step: explain two failing position-probe cases of the shipped model with contrastive LRP."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps
from faultlens.types import Case

# Name recall with a distractor name: the girl is named first, the boy later; the model leans to
# the more recent name. Both fail on stories260k (log p(target) < log p(foil)).
DEMO_CASES = (
    Case(id="attr-mia-ben", target=" Mia", foil=" Ben", variable="position", value="first",
         prompt="Once upon a time, there was a little girl named Mia. She loved to play outside. She had a red ball. "
                "She liked to draw pictures. One day, Mia met a boy named Ben. They played together in the park. "
                "The girl's name was"),
    Case(id="attr-lily-tom", target=" Lily", foil=" Tom", variable="position", value="first",
         prompt="Once upon a time, there was a little girl named Lily. She loved to play outside. She had a red ball. "
                "She liked to draw pictures. One day, Lily met a boy named Tom. They played together in the park. "
                "He was very kind. The girl's name was"),
)


def step(ctx: DemoContext) -> None:
    """Attribute each case with cp-lrp and gradient × input; print top tokens and faithfulness."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a 260K-parameter model is overhead-bound; extra threads only contend
    try:
        _step(ctx)
    finally:
        torch.set_num_threads(n)


def _step(ctx: DemoContext) -> None:
    from faultlens.attribution.explain import attribute_failures, explain, explanation_to_store
    from faultlens.attribution.graph import attribution_graph, graph_to_store
    from faultlens.attribution.render import render_explanation

    ad = ctx.adapter
    margins = []
    for c in DEMO_CASES:
        t, f = ad.score([c.prompt, c.prompt], [c.target, c.foil])
        margins.append((c, t - f))
    failing = [(c, m) for c, m in margins if m < 0]
    if not failing:
        ctx.console.print("no failing demo case on this model; nothing to explain")
        return
    expls = attribute_failures(ad, ctx.store, ctx.run_id, failing, top_n=2, methods_=("cp-lrp",), graph=False)
    by_prompt = {e.prompt: e for e in expls}
    for case, margin in failing:
        e = by_prompt[case.prompt]
        ctx.console.print(f"[bold]{case.id}[/]: log p(target) − log p(foil) = {margin:+.3f}")
        render_explanation(ctx.console, e, window=24)
        gx = explain(ad, case.prompt, case.target, case.foil, method="grad_x_input")
        explanation_to_store(ctx.store, ctx.run_id, case.id, gx)
        ctx.console.print(f"  grad×input deletion-AOPC {gx.faithfulness['deletion_aopc']:+.3f} "
                          f"(cp-lrp {e.faithfulness['deletion_aopc']:+.3f}, random {e.faithfulness['random_deletion_aopc']:+.3f})")
    worst = min(failing, key=lambda cm: cm[1])[0]
    g = attribution_graph(ad, worst.prompt, worst.target, worst.foil, variant="cp-lrp")
    graph_to_store(ctx.store, ctx.run_id, worst.id, g)
    ctx.console.print(f"graph for {worst.id}: {len(g['nodes'])} nodes, {len(g['edges'])} edges, "
                      f"edges '{g['edge_method']}' ({g['n_backward']} backwards, {g['seconds']['edges'] * 1e3:.0f} ms) "
                      f"→ attribution/{worst.id}/graph")
    ctx.notes["attribution_cases"] = [c.id for c, _ in failing]


step.order = 60
demo_steps.add("attribution", step, "Contrastive LRP on failing name-recall cases, with faithfulness.")
