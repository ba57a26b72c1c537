"""`faultlens explain MODEL --prompt ... --target ... --foil ...`: contrastive attribution in the terminal."""

from __future__ import annotations

import hashlib

import typer


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain_cmd(
        model: str = typer.Argument("stories260k", help="Shipped model name or local HF directory."),
        prompt: str = typer.Option(..., "--prompt", "-p", help="Prompt text."),
        target: str = typer.Option(..., "--target", "-t", help="Right answer (include its leading space)."),
        foil: str = typer.Option(..., "--foil", "-f", help="Wrong answer the model preferred."),
        method: str = typer.Option("cp-lrp", "--method", "-m", help="cp-lrp | attnlrp | grad_x_input | ig | rollout."),
        objective: str = typer.Option("auto", help="auto | contrastive | contrastive_logprob | target_logit | prob_diff."),
        store: str = typer.Option(None, "--store", help="Run store (default $FAULTLENS_STORE or ./faultlens-store.sqlite)."),
        case_id: str = typer.Option(None, "--case-id", help="Case id for the stored artifact (default: hash of the inputs)."),
        graph: bool = typer.Option(False, "--graph/--no-graph", help="Also store the cross-layer graph (LRP methods)."),
        graph_edges: str = typer.Option("auto", "--graph-edges", help="Graph edge method: auto | closed | packed | separate | rerun."),
        window: int = typer.Option(64, help="Show only the last N tokens (plus the top ones)."),
        mask: str = typer.Option("eos", help="Absent token for faithfulness curves and the IG baseline: eos | unk | pad | zero."),
    ) -> None:
        """Explain why FOIL beat TARGET: tokens coloured by relevance, with faithfulness."""
        from rich.console import Console

        from faultlens.attribution import GraphConfig, attribution_graph, explain, explanation_to_store, graph_to_store
        from faultlens.attribution.methods import methods
        from faultlens.attribution.render import render_explanation
        from faultlens.attribution.targets import targets
        from faultlens.models.hf import HFAdapter
        from faultlens.store import open_store

        from faultlens.attribution.graph import resolve_edges

        methods.get(method)  # validate names before loading anything
        resolve_edges(graph_edges)
        if objective != "auto":
            targets.get(objective)
        console = Console()
        ad = HFAdapter.load(model)
        expl = explain(ad, prompt, target, foil, method=method, objective=objective, mask=mask)
        render_explanation(console, expl, window=window)
        st = open_store(store)
        run = st.create_run(model, {"command": "explain", "method": method, "objective": expl.objective}, kind="explain")
        cid = case_id or hashlib.sha1(f"{prompt}|{target}|{foil}".encode()).hexdigest()[:10]
        key = explanation_to_store(st, run, cid, expl)
        if graph and method in ("cp-lrp", "attnlrp"):
            g = attribution_graph(ad, prompt, target, foil, variant=method, config=GraphConfig(edges=graph_edges))
            graph_to_store(st, run, cid, g)
            console.print(f"graph: {len(g['nodes'])} nodes, {len(g['edges'])} edges "
                          f"(edge method '{g['edge_method']}', {g['n_backward']} backwards)")
        st.set_status(run, "done")
        console.print(f"stored {key} in run {run} ({st.location})")
