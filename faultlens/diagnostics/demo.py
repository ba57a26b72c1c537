"""Demo step: attention health of the shipped model on a few TinyStories texts."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps

STORIES = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.",
    "Tom had a dog named Max. Max liked to run in the garden. One day Max ran away and Tom was sad. "
    "He looked everywhere for Max. At last he found him under a big tree, and they went home together.",
    "The sun was hot, so Sue went to the lake with her mom. They sat on the sand and ate apples. "
    "Sue saw a little fish in the water. \"Hello, fish!\" she said. The fish swam away and Sue laughed.",
]


@demo_steps.register("attention")
def attention_step(ctx: DemoContext) -> None:
    """Entropy, sinks, rank collapse, lazy layers and position profile of every layer × head."""
    from faultlens.diagnostics.analyze import AnalyzeConfig, analyze
    from faultlens.diagnostics.findings import findings_for
    from faultlens.diagnostics.persist import print_report, save

    texts = STORIES[:2] if ctx.fast else STORIES
    summary = analyze(ctx.adapter, texts, AnalyzeConfig())
    findings = findings_for(summary, ctx.run_id)
    ids = [f"attention-story{i}" for i in range(len(texts))]
    save(ctx.store, ctx.run_id, ctx.adapter, summary, findings, texts, ids, heatmaps=1)
    print_report(ctx.console, summary, findings)
    ctx.notes["attention"] = summary


attention_step.order = 20
