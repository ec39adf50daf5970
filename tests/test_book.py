"""The built book in a real headless Chromium, with no network.

Run by ``make browser`` (part of ``make test``) after ``make book``. Every page
of the table of contents is served from ``_build/html`` on 127.0.0.1; any
request to another host is blocked and fails the test. For each page: no page
error, no failed local request, every figure its notebook stores is drawn by
plotly, math is typeset by MathJax, and clicking each slider's rail changes
which traces are visible. Screenshots land in ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tools.toc import pages

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
# sphinx-thebe declares this constant in two scripts; harmless, and only with Thebe on.
KNOWN_NOISE = ("THEBE_JS_URL",)

pytestmark = pytest.mark.browser


def _stored_outputs(page: str, mime: str) -> list[str]:
    """The ``mime`` data of every output the page's notebook stores (none for Markdown pages)."""
    path = ROOT / f"{page}.ipynb"
    if not path.exists():
        return []
    nb = json.loads(path.read_text())
    return [
        "".join(output.get("data", {}).get(mime, ""))
        for cell in nb["cells"] if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
    ]


def _stored_figures(page: str) -> int:
    """Number of figure outputs the page's notebook stores."""
    return sum("kexue-figure" in html for html in _stored_outputs(page, "text/html"))


def _stored_tables(page: str) -> int:
    """Number of Markdown tables among the page's notebook outputs (``IPython.display.Markdown``)."""
    return sum(md.count("| --- |") for md in _stored_outputs(page, "text/markdown"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`make chromium`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageLog:
    """What a page did that it should not: errors, failed or external requests."""

    def __init__(self, page, base: str):
        self.errors: list[str] = []
        self.external: list[str] = []
        self.failed: list[str] = []
        local = urlparse(base).netloc

        def route(r):
            if urlparse(r.request.url).netloc == local:
                r.continue_()
            else:
                self.external.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda e: self._error(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and self._error(f"console: {m.text}"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))

    def _error(self, text: str) -> None:
        if not any(noise in text for noise in KNOWN_NOISE):
            self.errors.append(text)


def _open(browser, server, page_name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = PageLog(page, server)
    page.goto(f"{server}/{page_name}.html", wait_until="load")
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.wait_for_timeout(300)
    return page, log


@pytest.mark.parametrize("page_name", pages())
def test_page_renders_offline(browser, server, page_name):
    page, log = _open(browser, server, page_name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{page_name.replace('/', '_')}.png"), full_page=True)
    try:
        expected = _stored_figures(page_name)
        drawn = page.evaluate(
            "() => [...document.querySelectorAll('.kexue-figure')]"
            ".filter(d => d._fullLayout && d.querySelector('.main-svg')).length"
        )
        assert drawn == expected, f"{drawn} of {expected} stored figures drawn on {page_name}"
        tables = page.locator(".cell_output table").count()
        assert tables == _stored_tables(page_name), f"{tables} of {_stored_tables(page_name)} output tables rendered"
        assert "| --- |" not in page.inner_text("main"), f"a Markdown table shown as raw text on {page_name}"
        source = (ROOT / f"{page_name}.ipynb") if expected else None
        if source is not None or page_name == "api":
            typeset = page.locator("mjx-container").count()
            raw = page.locator(".math:not(:has(mjx-container))").count()
            assert typeset > 0, f"no math typeset on {page_name}"
            assert raw == 0, f"{raw} math elements left untypeset on {page_name}"
        wide = page.evaluate(
            "() => [...document.querySelectorAll('mjx-container[display=\"true\"]')].filter(m =>"
            " m.firstElementChild.getBoundingClientRect().right >"
            " (m.closest('div.math') || m.parentElement).getBoundingClientRect().right + 1).length"
        )
        assert wide == 0, f"{wide} display equations wider than the text column on {page_name} (break them into lines)"
        assert not log.errors, log.errors
        assert not log.failed, f"failed requests: {log.failed}"
        assert not log.external, f"requests to other hosts: {log.external}"
    finally:
        page.close()


def _slider_pages() -> list[str]:
    return [p for p in pages() if _stored_figures(p)]


@pytest.mark.parametrize("page_name", _slider_pages())
def test_sliders_switch_traces(browser, server, page_name):
    page, log = _open(browser, server, page_name)
    try:
        figures = page.locator(".kexue-figure")
        n_sliders = 0
        for i in range(figures.count()):
            figure = figures.nth(i)
            if figure.locator(".slider-rail-rect").count() == 0:
                continue
            n_sliders += 1
            figure.scroll_into_view_if_needed()
            before = figure.evaluate("gd => [gd.layout.sliders[0].active, gd.data.map(t => t.visible)]")
            n_steps = figure.evaluate("gd => gd.layout.sliders[0].steps.length")
            rail = figure.locator(".slider-rail-rect").first.bounding_box()
            # Click near whichever end is further from the active step.
            fraction = 0.97 if before[0] < n_steps / 2 else 0.03
            page.mouse.click(rail["x"] + fraction * rail["width"], rail["y"] + rail["height"] / 2)
            page.wait_for_timeout(200)
            after = figure.evaluate("gd => [gd.layout.sliders[0].active, gd.data.map(t => t.visible)]")
            assert after[0] != before[0], f"slider {i} on {page_name} did not move"
            assert after[1] != before[1], f"slider {i} on {page_name} moved but the traces did not change"
            shown = [v for v in after[1] if v is not False]
            assert shown, f"slider {i} on {page_name} hid every trace"
        assert n_sliders >= 3, f"{page_name} has {n_sliders} sliders; every chapter needs at least 3"
        assert not log.errors, log.errors
    finally:
        page.close()


def test_live_code_fails_gracefully_offline(browser, server):
    """"Live code" needs Thebe from a CDN and a Binder: offline, the click must break nothing."""
    page_name = _slider_pages()[0]
    page, log = _open(browser, server, page_name)
    try:
        drawn = "() => [...document.querySelectorAll('.kexue-figure')].filter(d => d._fullLayout).length"
        before = page.evaluate(drawn)
        page.locator(".dropdown-launch-buttons button").first.click()
        page.locator(".btn-launch-thebe").click()
        page.wait_for_timeout(1500)
        assert [u for u in log.external if "thebe" in u], "Live code did not try to load Thebe"
        assert page.evaluate(drawn) == before, "figures disappeared after Live code failed to load"
        assert page.locator("mjx-container").count() > 0
        # Only the blocked Thebe script may complain.
        others = [e for e in log.errors if "Failed to load resource" not in e]
        assert not others, others
    finally:
        page.close()


@pytest.mark.parametrize("page_name", _slider_pages())
def test_launch_buttons_point_at_this_notebook(page_name):
    """Binder and Colab open this very notebook of the configured repository."""
    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    slug = repo["url"].removeprefix("https://github.com/")
    html = (HTML / f"{page_name}.html").read_text()
    binder = f"https://mybinder.org/v2/gh/{slug}/{repo['branch']}?urlpath=lab/tree/{page_name}.ipynb"
    colab = f"https://colab.research.google.com/github/{slug}/blob/{repo['branch']}/{page_name}.ipynb"
    assert binder in html, f"no Binder link to {page_name}.ipynb"
    assert colab in html, f"no Colab link to {page_name}.ipynb"
    assert f'repo: "{slug}"' in html and f'ref: "{repo["branch"]}"' in html, "Thebe points elsewhere"
    assert (ROOT / f"{page_name}.ipynb").exists()
