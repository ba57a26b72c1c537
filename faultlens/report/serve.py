"""`faultlens serve`: a local, read-only web UI and JSON API over the run store.

HTML: `/` lists runs, `/runs/{id}` shows the same page as `faultlens report` (plotly.js from
`/static/plotly.min.js`, served from the installed package). JSON: `/api/runs...` over runs,
results, findings, features, monitor events and artifacts, described by the OpenAPI schema at
`/openapi.json` (no Swagger page: it would load scripts from a CDN). Only GET routes exist. Artifact keys are looked up in the database, never on
the file system, so no path parameter can reach a file. The host is 127.0.0.1 and the Host
header must name the loopback (a DNS-rebinding guard).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import func, select
from starlette.middleware.trustedhost import TrustedHostMiddleware

from faultlens.errors import FaultlensError
from faultlens.report.builder import ReportConfig, environment, plotly_js, render, static_text
from faultlens.report.figures import clean
from faultlens.store import Store
from faultlens.store import schema as S

LOOPBACK = "127.0.0.1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
MAX_ARRAY_ELEMENTS = 2_000_000
MAX_PAGE = 5000


class RunOut(BaseModel):
    run_id: str
    kind: str
    model: str
    status: str
    created: str | None = None
    updated: str | None = None
    config: dict = {}
    counts: dict[str, int] = {}


class Page(BaseModel):
    total: int
    offset: int
    items: list[dict[str, Any]]


class ArtifactInfo(BaseModel):
    key: str
    kind: str
    dtype: str | None = None
    shape: str | None = None
    meta: dict = {}


class ArtifactOut(ArtifactInfo):
    value: Any = None


def _json(obj: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(clean(obj), status_code=status)


def _records(df) -> list[dict]:
    out = df.drop(columns=[c for c in ("id",) if c in df.columns]).to_dict(orient="records")
    for r in out:
        for k, v in r.items():
            if hasattr(v, "isoformat"):
                r[k] = v.isoformat()
    return out


def create_app(store: Store, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The FastAPI app over `store` (read-only: only GET routes, only SELECT queries)."""
    # No /docs or /redoc: FastAPI's Swagger/ReDoc pages load their JavaScript from a CDN.
    app = FastAPI(title="faultlens", version="1", description="Read-only view of a faultlens run store.",
                  docs_url=None, redoc_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ALLOWED_HOSTS)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    def run_or_404(run_id: str) -> dict:
        run = store.get_run(run_id)
        if run is None:
            raise HTTPException(404, f"Unknown run id {run_id!r}; GET /api/runs lists the runs.")
        return run

    def counts(run_id: str) -> dict[str, int]:
        return {n: store.count(n, run_id) for n in ("results", "features", "findings", "monitor_events", "artifacts")}

    def run_out(run: dict, with_counts: bool = False) -> dict:
        out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in run.items()}
        if with_counts:
            out["counts"] = counts(run["run_id"])
        return out

    # ------------------------------------------------------------------ HTML
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        with store.engine.connect() as c:
            n_res = dict(c.execute(select(S.results.c.run_id, func.count()).group_by(S.results.c.run_id)).all())
            n_find = dict(c.execute(select(S.findings.c.run_id, func.count()).group_by(S.findings.c.run_id)).all())
        runs = [run_out(r) | {"n_results": n_res.get(r["run_id"], 0), "n_findings": n_find.get(r["run_id"], 0)}
                for r in _records(store.runs())]
        page = environment().get_template("index.html.j2").render(runs=runs, store=store.location, css=static_text("report.css"))
        return HTMLResponse(page)

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(run_id: str) -> HTMLResponse:
        if store.get_run(run_id) is None:
            page = environment().get_template("not_found.html.j2").render(run_id=run_id)
            return HTMLResponse(page, status_code=404)
        cfg = ReportConfig(title=f"faultlens · {run_id}", plotly_src="/static/plotly.min.js", home="/")
        return HTMLResponse(render(store, [run_id], cfg))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        return Response(plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    # ------------------------------------------------------------------ JSON
    @app.get("/api/runs", response_model=list[RunOut], summary="List runs, newest first")
    def api_runs() -> JSONResponse:
        return _json([run_out(r) for r in _records(store.runs())])

    @app.get("/api/runs/{run_id}", response_model=RunOut, summary="One run with row counts")
    def api_run(run_id: str) -> JSONResponse:
        return _json(run_out(run_or_404(run_id), with_counts=True))

    def table_page(table: str, run_id: str, offset: int, limit: int, **filters: str | None) -> JSONResponse:
        run_or_404(run_id)
        df = store.to_pandas(table, run_id)
        for col, val in filters.items():
            if val is not None:
                df = df[df[col].astype(str).str.startswith(val)] if col == "name" else df[df[col] == val]
        return _json({"total": len(df), "offset": offset, "items": _records(df.iloc[offset: offset + limit])})

    @app.get("/api/runs/{run_id}/results", response_model=Page, summary="Result rows (one per case per metric)")
    def api_results(run_id: str, probe: str | None = None, metric: str | None = None,
                    offset: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=MAX_PAGE)) -> JSONResponse:
        return table_page("results", run_id, offset, limit, probe=probe, metric=metric)

    @app.get("/api/runs/{run_id}/findings", response_model=Page, summary="Findings")
    def api_findings(run_id: str, source: str | None = None, offset: int = Query(0, ge=0),
                     limit: int = Query(500, ge=1, le=MAX_PAGE)) -> JSONResponse:
        return table_page("findings", run_id, offset, limit, source=source)

    @app.get("/api/runs/{run_id}/features", response_model=Page, summary="Features (name prefix filter)")
    def api_features(run_id: str, name: str | None = None, case_id: str | None = None,
                     offset: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=MAX_PAGE)) -> JSONResponse:
        return table_page("features", run_id, offset, limit, name=name, case_id=case_id)

    @app.get("/api/runs/{run_id}/events", response_model=Page, summary="Monitor events (step, name, value)")
    def api_events(run_id: str, name: str | None = None, offset: int = Query(0, ge=0),
                   limit: int = Query(MAX_PAGE, ge=1, le=MAX_PAGE)) -> JSONResponse:
        return table_page("monitor_events", run_id, offset, limit, name=name)

    @app.get("/api/runs/{run_id}/artifacts", response_model=list[ArtifactInfo], summary="Artifact index (no payloads)")
    def api_artifacts(run_id: str, prefix: str = "") -> JSONResponse:
        run_or_404(run_id)
        return _json(store.list_artifacts(run_id, prefix))

    @app.get("/api/runs/{run_id}/artifacts/{key:path}", response_model=ArtifactOut,
             summary="One artifact: JSON as is, arrays as nested lists")
    def api_artifact(run_id: str, key: str) -> JSONResponse:
        run_or_404(run_id)
        info = next((a for a in store.list_artifacts(run_id, key) if a["key"] == key), None)
        if info is None:
            raise HTTPException(404, f"Run {run_id!r} has no artifact {key!r}; GET /api/runs/{run_id}/artifacts lists them.")
        value = store.get_artifact(run_id, key)
        if isinstance(value, np.ndarray):
            if value.size > MAX_ARRAY_ELEMENTS:
                raise HTTPException(413, f"Artifact {key!r} has {value.size} elements (> {MAX_ARRAY_ELEMENTS}); "
                                         "read it with Store.get_artifact in Python.")
            value = value.astype(np.float64).tolist() if value.dtype.kind == "f" else value.tolist()
        return _json(info | {"value": value})

    @app.exception_handler(FaultlensError)
    async def faultlens_error(_request: Request, exc: FaultlensError) -> JSONResponse:
        return _json({"detail": str(exc)}, status=404)

    return app


def serve(store: Store, port: int = 8765) -> None:
    """Run the app with uvicorn on 127.0.0.1:`port` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(store), host=LOOPBACK, port=port, log_level="warning")
