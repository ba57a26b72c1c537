"""Demo step: the position probe on the shipped model, with attention captured for its cases."""

from __future__ import annotations

from faultlens.demo import DemoContext, demo_steps


@demo_steps.register("probes")
def probes_step(ctx: DemoContext) -> None:
    """Score the position probe (and, when built, a fast subset of the battery) on the shipped model."""
    from faultlens.commands.common import progress_bar
    from faultlens.commands.scan import print_analyses
    from faultlens.probes import load_all, probes
    from faultlens.probes.base import ProbeConfig
    from faultlens.probes.runner import ScanConfig, run_scan

    load_all()
    names = ctx.notes.get("demo_probes") or [n for n in probes.names() if getattr(probes.get(n), "in_demo", n == "position")]
    cfg = ScanConfig(model=ctx.adapter.name, probes=tuple(names),
                     probe=ProbeConfig(case_set="tiny", n_per_cell=12 if ctx.fast else 30))  # ~2 min on 2 cores
    with progress_bar() as update:
        report = run_scan(ctx.adapter, ctx.store, cfg, run_id=ctx.run_id, resume=True, progress=update)
    print_analyses(report.analyses)
    ctx.notes["scan"] = report
    _store_attention(ctx)


def _store_attention(ctx: DemoContext, n_cases: int = 3) -> None:
    """Attention patterns of a few position cases (one per slot extreme) as artifacts."""
    import torch

    df = ctx.store.to_pandas("results", ctx.run_id)
    df = df[df["probe"] == "position"].sort_values("case_id")
    picks = df.groupby("value").head(1).head(n_cases)
    for _, row in picks.iterrows():
        prompt = row["detail"]["prompt"]
        batch = ctx.adapter.tokenize_batch([prompt])
        with torch.inference_mode(), ctx.adapter.capture(["blocks.*.attn.pattern"]) as cap:
            ctx.adapter.model(**batch)
        tokens = ctx.adapter.tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
        for name, pat in cap.items():
            layer = name.split(".")[1]
            ctx.store.put_artifact(ctx.run_id, f"attention/{row['case_id']}/L{layer}",
                                   pat[0].to(torch.float16).numpy(), {"tokens": tokens})
    ctx.console.print(f"stored attention patterns of {len(picks)} cases × {ctx.adapter.model.config.num_hidden_layers} layers")


probes_step.order = 10
