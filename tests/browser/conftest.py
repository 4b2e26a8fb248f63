"""Fixtures of the browser tests: the app on a real HTTP server, Debian's Chromium through Playwright,
and screenshots (`make screenshots`, CRM_SCREENSHOTS=1, writes the committed ones in docs/screenshots/)."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# `make screenshots` (CRM_SCREENSHOTS=1) refreshes the committed ones; other runs keep them out of git.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("CRM_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "crm-screenshots"
)
VIEWPORT = {"width": 1280, "height": 860}


@pytest.fixture
def live_server(app, monkeypatch) -> Iterator[str]:
    """The app on a real, threaded HTTP server on 127.0.0.1; yields its base URL."""
    from werkzeug.serving import make_server

    # Links in emails are built from the request, so they point at this server.
    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    # Static files from the browser's cache, not revalidated on every page (fewer requests, faster tests).
    monkeypatch.setitem(app.config, "SEND_FILE_MAX_AGE_DEFAULT", 3600)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def browser():  # noqa: ANN201 - a playwright Browser
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., object]]:
    """new_page(locale="en-US"): a page in a fresh browser context (its own cookies), closed afterwards."""
    contexts = []

    def open_page(locale: str = "en-US"):  # noqa: ANN202 - a playwright Page
        context = browser.new_context(viewport=VIEWPORT, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def shot() -> Callable[..., None]:
    """shot(page, "name.png", full_page=False): a screenshot into SCREENSHOTS."""

    def take(page, name: str, full_page: bool = False) -> None:  # noqa: ANN001 - a playwright Page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)

    return take
