"""A new customer in a real browser: sign up, sign out and in, invite a colleague who joins.

Debian's Chromium driven by Playwright, against the real app served by a real HTTP server in a
thread, with invitation mail delivered by the real email job to a real SMTP server (aiosmtpd).
Screenshots of the pages land in docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

import pytest

from tests.factories import PASSWORD, run_jobs, unique
from tests.saas.conftest import SmtpServer

pytestmark = pytest.mark.browser

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
def inbox(app, monkeypatch):
    """A real SMTP server on a free port; the app sends its mail there."""
    server = SmtpServer()
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def live_server(app, monkeypatch):
    """The app on a real, threaded HTTP server on 127.0.0.1; yields its base URL."""
    from werkzeug.serving import make_server

    # Links in emails are built from the request, so they point at this server.
    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _shot(page, name: str, full_page: bool = False) -> None:  # noqa: ANN001
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def test_signup_sign_out_in_and_invite_a_colleague(browser, app, live_server, inbox):
    from playwright.sync_api import expect

    base = live_server
    suffix = unique("")
    company = f"Lotus Trading {suffix}"
    slug = f"lotus-trading-{suffix}"
    owner_email = f"mali-{suffix}@example.com"
    colleague_email = f"wei-{suffix}@example.com"

    owner = browser.new_context(viewport=VIEWPORT, locale="en-US")
    page = owner.new_page()
    page.set_default_timeout(15_000)

    # The landing page, then its call to action.
    page.goto(base + "/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    _shot(page, "landing.png", full_page=True)
    page.get_by_role("link", name="Start your free 14-day trial").click()
    expect(page).to_have_url(base + "/signup")

    # The company name suggests the workspace address, checked live while typing.
    page.get_by_label("Company name").fill(company)
    expect(page.locator("#slug")).to_have_value(slug)
    expect(page.locator("#slug-check")).to_contain_text(f"/{slug} is available")
    page.get_by_label("Your name").fill("Mali Srisuk")
    page.get_by_label("Work email").fill(owner_email)
    page.get_by_label("Password").fill(PASSWORD)
    _shot(page, "signup.png", full_page=True)
    page.get_by_role("button", name="Create workspace").click()

    # Straight into the new workspace.
    expect(page).to_have_url(f"{base}/{slug}/")
    expect(page.get_by_role("heading", name="Welcome, Mali Srisuk")).to_be_visible()
    expect(page.locator("[data-testid=member-count]")).to_have_text("1")
    _shot(page, "dashboard.png", full_page=True)

    # Sign out, then back in.
    page.get_by_test_id("user-menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(base + "/login")
    page.goto(f"{base}/{slug}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(owner_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/{slug}/")

    # Admin > People: invite a colleague as a sales person.
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("link", name="People").click()
    expect(page).to_have_url(f"{base}/{slug}/admin/people")
    invite = page.locator("form", has=page.get_by_role("button", name="Send invitation"))
    invite.get_by_label("Email").fill(colleague_email)
    invite.get_by_label("Role").select_option("sales")
    invite.get_by_role("button", name="Send invitation").click()
    pending = page.locator("li", has_text=colleague_email)
    expect(pending).to_be_visible()
    expect(pending).to_contain_text("Sales")
    _shot(page, "people.png", full_page=True)

    # The email job delivers the invitation over SMTP.
    run_jobs(app)
    [invitation] = inbox.to(colleague_email)
    link = re.search(r"https?://\S+/invite/\S+", invitation.get_body(("plain",)).get_content()).group(0)
    assert link.startswith(base + "/")

    # The colleague opens it in a browser of their own and joins.
    colleague = browser.new_context(viewport=VIEWPORT, locale="en-US")
    other = colleague.new_page()
    other.set_default_timeout(15_000)
    other.goto(link)
    expect(other.get_by_role("heading", level=1)).to_contain_text(company)
    other.get_by_label("Your name").fill("Wei Chen")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Join workspace").click()
    expect(other).to_have_url(f"{base}/{slug}/")
    expect(other.get_by_role("heading", name="Welcome, Wei Chen")).to_be_visible()
    colleague.close()

    # The owner sees the colleague among the people, no longer pending.
    page.reload()
    row = page.locator("tr", has_text=colleague_email)
    expect(row).to_contain_text("Wei Chen")
    expect(page.locator("li", has_text=colleague_email)).to_have_count(0)
    owner.close()


def test_landing_page_in_thai_and_simplified_chinese(browser, live_server):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server + "/")
    english = page.get_by_role("heading", level=1).inner_text()
    for code, label, shot in (
        ("th", "ไทย", "landing-th.png"),
        ("zh-Hans", "简体中文", "landing-zh_Hans.png"),
    ):
        # The menu's own name is translated too: find it by its icon.
        page.locator("nav .dropdown-toggle", has=page.locator(".bi-translate")).click()
        page.get_by_role("button", name=label).click()
        expect(page.locator("html")).to_have_attribute("lang", code)
        expect(page.get_by_role("heading", level=1)).not_to_have_text(english)
        _shot(page, shot, full_page=True)
    context.close()
