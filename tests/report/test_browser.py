"""The report and the served pages in a real headless Chromium (Debian's, via Playwright).

Screenshots land in test-output/report/; look at them when changing a view.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from faultlens.report import build_report
from faultlens.report.synthetic import XSS_OUTPUT, XSS_PROMPT

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report_file(filled, out_dir):
    store, ids = filled
    return build_report(store, [ids["rich"], ids["other"]], out_dir / "report.html")


def scroll_through(page) -> None:
    """Scroll to the bottom and back so every lazily drawn figure is drawn."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height + 900, 800):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(60)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)


def wait_js(page, expr: str, tries: int = 200) -> None:
    """Poll `expr` from the test side (the page's CSP forbids eval, which wait_for_function needs)."""
    for _ in range(tries):
        if page.evaluate(expr):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"never true in the page: {expr}")


def heat_z(page, fid: str) -> list:
    return page.evaluate(f"document.getElementById('{fid}').data[0].z")


def only_local(requests: list[str], allowed_hosts=("127.0.0.1",)) -> list[str]:
    """The requests that went anywhere but the report file itself or the loopback server."""
    bad = []
    for url in requests:
        u = urlparse(url)
        if u.scheme in ("data", "blob", "about"):
            continue
        if u.scheme == "file" and u.path.endswith("/report.html"):
            continue
        if u.scheme in ("http", "https") and u.hostname in allowed_hosts:
            continue
        bad.append(url)
    return bad


def test_report_loads_offline_and_views_work(watch, report_file, out_dir):
    page = watch.page
    page.goto(report_file.as_uri())
    wait_js(page, "window.faultlensReport !== undefined && typeof Plotly !== 'undefined'")
    scroll_through(page)
    page.screenshot(path=str(out_dir / "report_full.png"), full_page=True)

    # Attention heat map: drawn, and the head selector swaps its data.
    sec = page.locator("#r0-attention")
    heat = sec.locator(".fl-pane.shown .fl-plot").first
    heat.scroll_into_view_if_needed()
    fid = heat.get_attribute("id")
    wait_js(page, f"document.getElementById('{fid}').data !== undefined")
    assert page.locator(f"#{fid} .heatmaplayer, #{fid} .hm").count() + page.locator(f"#{fid} image").count() > 0
    before = heat_z(page, fid)
    layer = page.locator(f'select.fl-stack[data-fig="{fid}"][data-dim="0"]')
    head = page.locator(f'select.fl-stack[data-fig="{fid}"][data-dim="1"]')
    layer.select_option(label="L1")
    head.select_option(label="H2")  # the planted sink head: everything on key 0
    after = heat_z(page, fid)
    assert after != before
    assert min(row[0] for row in after[1:]) > 0.8  # every query row puts most mass on token 0
    assert "layer 1, head 2" in page.locator(f"#{fid} .gtitle").text_content()
    sec.screenshot(path=str(out_dir / "attention.png"))

    # Token importance: the prompt is shown, shaded, and the method toggle switches views.
    tok = page.locator("#r0-tokens")
    tok.scroll_into_view_if_needed()
    shown = tok.locator(".fl-pane.shown .fl-pane.shown .tokens")
    assert "there was" in shown.inner_text() and shown.get_attribute("data-method") == "lrp"
    tok.locator("button", has_text="grad_x_input").first.click()
    assert tok.locator(".fl-pane.shown .fl-pane.shown .tokens").get_attribute("data-method") == "grad_x_input"
    tok.screenshot(path=str(out_dir / "tokens.png"))

    # Comparison tab.
    page.locator('nav.tabs button[data-key="compare"]').click()
    scroll_through(page)
    page.locator("#compare").screenshot(path=str(out_dir / "compare.png"))

    assert watch.console_errors == []
    assert only_local(watch.requests, allowed_hosts=()) == []


def test_hostile_model_text_renders_as_text(watch, report_file):
    page = watch.page
    page.goto(report_file.as_uri())
    wait_js(page, "window.faultlensReport !== undefined")
    scroll_through(page)
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    text = page.locator("body").inner_text()
    assert XSS_PROMPT in text and XSS_OUTPUT in text  # shown literally, as text
    assert "<script>window.__xss=3</script>" in page.locator("#r0-summary").inner_text()
    assert "case<script>alert(3)</script>" in page.locator("#r0-attention select.fl-switch").inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__alerts") == [] and watch.dialogs == []
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert watch.console_errors == []


def test_empty_run_report_says_nothing_yet(watch, filled, out_dir):
    store, ids = filled
    path = build_report(store, [ids["empty"]], out_dir / "empty" / "report.html")
    watch.page.goto(path.as_uri())
    assert "Nothing recorded for this run yet" in watch.page.inner_text("body")
    assert watch.console_errors == []


def test_served_pages_load_and_work(watch, server, out_dir):
    page = watch.page
    page.goto(server + "/")
    assert "stories260k" in page.inner_text("body")
    page.screenshot(path=str(out_dir / "serve_index.png"), full_page=True)
    page.locator('a[href="/runs/rich"]').first.click()
    wait_js(page, "window.faultlensReport !== undefined && typeof Plotly !== 'undefined'")
    scroll_through(page)
    heat = page.locator("#r0-attention .fl-pane.shown .fl-plot").first
    heat.scroll_into_view_if_needed()
    fid = heat.get_attribute("id")
    wait_js(page, f"document.getElementById('{fid}').data !== undefined")
    before = heat_z(page, fid)
    page.locator(f'select.fl-stack[data-fig="{fid}"][data-dim="1"]').select_option(label="H1")
    assert heat_z(page, fid) != before
    page.screenshot(path=str(out_dir / "serve_run.png"))
    assert page.evaluate("window.__xss") is None and watch.dialogs == []
    assert watch.console_errors == []
    assert only_local(watch.requests) == []
    page.goto(server + "/api/runs/nope")
    assert "Unknown run id" in page.inner_text("body")
