"""`faultlens diagnose`: rank ABNN categories / root causes for a symptom and evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from faultlens.commands.common import StoreOpt, console


def register(app: typer.Typer) -> None:
    @app.command()
    def diagnose(
        symptom: str = typer.Argument("", help="What you see, in words (e.g. 'cached generation differs from forward')."),
        evidence: List[Path] = typer.Option([], "--evidence", help="Saved `faultlens check --json` output or a JSON list of findings (repeatable)."),
        log: Optional[Path] = typer.Option(None, "--log", help="A training log (plain text; its loss curve is read)."),
        run: Optional[str] = typer.Option(None, "--run", help="Use the findings stored under this run id."),
        top: int = typer.Option(5, "--top", help="How many causes to show."),
        json_out: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
        store: Optional[str] = StoreOpt,
    ) -> None:
        """Rank likely attention-fault root causes from symptom → cause links (see docs/faults.md)."""
        from faultlens.errors import FaultlensError
        from faultlens.faults.diagnose import diagnose as rank, read_findings

        findings: list[dict] = []
        for p in evidence:
            findings += read_findings(str(p))
        if run:
            from faultlens.store import open_store

            st = open_store(store)
            st.require_run(run)
            df = st.to_pandas("findings", run)
            findings += [{"source": r.source, "category": r.category, "message": r.message} for r in df.itertuples()]
        text = ""
        if log is not None:
            if not log.is_file():
                raise FaultlensError(f"{log} does not exist; pass --log with a training log file.")
            text = log.read_text(errors="replace")
        if not (symptom.strip() or findings or text):
            raise FaultlensError("Nothing to diagnose: give a SYMPTOM, --evidence FILE, --log FILE or --run RUN_ID.")
        ranked = rank(symptom, findings, text, top=top)
        if json_out:
            typer.echo(json.dumps(ranked, indent=1))
            return
        if not ranked:
            console.print("No symptom → cause link matched; describe what you see (e.g. 'NaN in fp16', "
                          "'padding changes outputs') or run `faultlens check` and pass --evidence.")
            return
        for i, c in enumerate(ranked, 1):
            console.print(f"[bold]{i}. {c['category']} / {c['root_cause']}[/]  score {c['score']} ({c['share']:.0%})")
            for r in c["reasons"]:
                console.print(f"   - {r}", highlight=False)
