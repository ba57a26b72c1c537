"""Fixtures for the report tests: synthetic runs in a temp store, a headless Chromium, a server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from faultlens.report.synthetic import SyntheticRun, write_synthetic_run
from faultlens.store import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
OUT = Path(__file__).resolve().parents[2] / "test-output" / "report"


@pytest.fixture(scope="session")
def filled(tmp_path_factory):
    """(store, ids): a hostile rich run "rich", a second model "other", an empty run "empty"."""
    store = Store(tmp_path_factory.mktemp("store") / "s.sqlite")
    ids = {
        "rich": write_synthetic_run(store, SyntheticRun(n_params=260_000), model="stories260k", run_id="rich"),
        "other": write_synthetic_run(store, SyntheticRun(seed=1, hostile=False, stats_as="features",
                                                         n_params=15_000_000), model="stories15M", run_id="other"),
        "empty": store.create_run("nothing-yet", {}, run_id="empty"),
    }
    return store, ids


@pytest.fixture(scope="session")
def out_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian chromium at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need `pip install playwright`")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageWatch:
    """A page plus everything it logged and requested, and any dialog (alert) it opened."""

    def __init__(self, page):
        self.page, self.console, self.errors, self.requests, self.dialogs = page, [], [], [], []
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    @property
    def console_errors(self) -> list[str]:
        return [t for kind, t in self.console if kind == "error"] + self.errors


@pytest.fixture
def watch(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.add_init_script("window.__alerts = []; window.alert = function (m) { window.__alerts.push(String(m)); };")
    yield PageWatch(page)
    ctx.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(filled):
    """The serve app under uvicorn on 127.0.0.1:<free port> in a background thread."""
    import uvicorn

    from faultlens.report.serve import LOOPBACK, create_app

    store, _ = filled
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(store), host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://{LOOPBACK}:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
