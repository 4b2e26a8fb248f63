"""A new customer in a real browser: sign up, sign out and in, invite a colleague who joins.

Debian's Chromium driven by Playwright, against the real app served by a real HTTP server in a
thread, with invitation mail delivered by the real email job to a real SMTP server (aiosmtpd).
Screenshots of the pages land in docs/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD, run_jobs, unique
from tests.saas.conftest import SmtpServer

pytestmark = pytest.mark.browser


@pytest.fixture
def inbox(app, monkeypatch):
    """A real SMTP server on a free port; the app sends its mail there."""
    server = SmtpServer()
    server.start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()


def test_signup_sign_out_in_and_invite_a_colleague(new_page, app, live_server, inbox, shot):
    from playwright.sync_api import expect

    base = live_server
    suffix = unique("")
    company = f"Lotus Trading {suffix}"
    slug = f"lotus-trading-{suffix}"
    owner_email = f"mali-{suffix}@example.com"
    colleague_email = f"wei-{suffix}@example.com"

    page = new_page()

    # The landing page, then its call to action.
    page.goto(base + "/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shot(page, "landing.png", full_page=True)
    page.get_by_role("link", name="Start your free 14-day trial").click()
    expect(page).to_have_url(base + "/signup")

    # The company name suggests the workspace address, checked live while typing.
    page.get_by_label("Company name").fill(company)
    expect(page.locator("#slug")).to_have_value(slug)
    expect(page.locator("#slug-check")).to_contain_text(f"/{slug} is available")
    page.get_by_label("Your name").fill("Mali Srisuk")
    page.get_by_label("Work email").fill(owner_email)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "signup.png", full_page=True)
    page.get_by_role("button", name="Create workspace").click()

    # Straight into the new workspace.
    expect(page).to_have_url(f"{base}/{slug}/")
    expect(page.get_by_role("heading", name="Welcome, Mali Srisuk")).to_be_visible()
    expect(page.locator("[data-testid=member-count]")).to_have_text("1")
    shot(page, "dashboard.png", full_page=True)

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
    shot(page, "people.png", full_page=True)

    # The email job delivers the invitation over SMTP.
    run_jobs(app)
    [invitation] = inbox.to(colleague_email)
    link = re.search(r"https?://\S+/invite/\S+", invitation.get_body(("plain",)).get_content()).group(0)
    assert link.startswith(base + "/")

    # The colleague opens it in a browser of their own and joins.
    other = new_page()
    other.goto(link)
    expect(other.get_by_role("heading", level=1)).to_contain_text(company)
    other.get_by_label("Your name").fill("Wei Chen")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Join workspace").click()
    expect(other).to_have_url(f"{base}/{slug}/")
    expect(other.get_by_role("heading", name="Welcome, Wei Chen")).to_be_visible()

    # The owner sees the colleague among the people, no longer pending.
    page.reload()
    row = page.locator("tr", has_text=colleague_email)
    expect(row).to_contain_text("Wei Chen")
    expect(page.locator("li", has_text=colleague_email)).to_have_count(0)


def test_landing_page_in_thai_and_simplified_chinese(new_page, live_server, shot):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(live_server + "/")
    english = page.get_by_role("heading", level=1).inner_text()
    for code, label, name in (
        ("th", "ไทย", "landing-th.png"),
        ("zh-Hans", "简体中文", "landing-zh_Hans.png"),
    ):
        # The menu's own name is translated too: find it by its icon.
        page.locator("nav .dropdown-toggle", has=page.locator(".bi-translate")).click()
        page.get_by_role("button", name=label).click()
        expect(page.locator("html")).to_have_attribute("lang", code)
        expect(page.get_by_role("heading", level=1)).not_to_have_text(english)
        shot(page, name, full_page=True)
