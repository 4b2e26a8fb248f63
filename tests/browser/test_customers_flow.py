"""Customer 360 in a real browser: a company and its contacts, a call on the timeline, the top bar's
search in Chinese and Thai, and a CSV import followed to the end of its progress bar.

Debian's Chromium driven by Playwright against the real app on a real HTTP server; the import runs
as the real RQ job in a real (burst) worker on the test Redis, while the page polls for progress.
Screenshots: customers-list.png, customers-360.png, customers-import.png, customers-companies.png and
customers-company-360.png (docs/screenshots/ with CRM_SCREENSHOTS=1).
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.factories import PASSWORD, run_jobs

pytestmark = pytest.mark.browser

COMPANY = "Golden Lotus Trading 金莲贸易"
# The file's companies: one that is already there (linked, not added again) and four new ones.
FILE_COMPANIES = [
    COMPANY,
    "深圳华强电子有限公司",
    "บริษัท สยามไรซ์ จำกัด",
    "台北好食有限公司",
    "Andaman Travel Co.",
]
ROWS = 300
BAD = (10, 50, 90, 120, 160, 200, 250)  # the bad rows of _import_file, by index
BAD_ROWS = len(BAD)
SOMCHAI_EMAIL = "somchai@siamrice.example"


def _import_file() -> tuple[bytes, list[list[str]]]:
    """A contacts CSV in UTF-8: Chinese, Thai and English names, one row that updates an existing
    contact, and seven bad rows (bad email x3, no email x2, bad phone, a duplicate email)."""
    family = "王李刘陈杨黄赵吴周徐"
    given = ["芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军"]
    thai_first = ["สมศรี", "สมศักดิ์", "วิไล", "นภา", "กมล", "อรุณ", "ปัทมา", "ประเสริฐ", "จันทร์เพ็ญ", "ธนพล"]
    thai_last = ["รักไทย", "ศรีสุข", "มั่นคง", "บุญมา", "แสงทอง", "วงศ์สวัสดิ์", "ทองดี", "สุขสวัสดิ์", "พึ่งบุญ", "เจริญผล"]
    english_first = ["Anna", "Ben", "Chloe", "David", "Emma", "Frank", "Grace"]
    english_last = ["Lee", "Carter", "Tan", "Wong", "Ng"]
    titles = ["采购经理", "ผู้จัดการฝ่ายขาย", "Buyer", "營運總監", "Owner"]
    cities = ["上海", "กรุงเทพมหานคร", "Chiang Mai", "台北", "深圳"]
    rows: list[list[str]] = []
    for i in range(ROWS):
        company = FILE_COMPANIES[(i // 3) % 5]
        k = i // 3  # each Chinese and each Thai name once
        if i % 3 == 0:
            name = family[k % 10] + given[k // 10]
        elif i % 3 == 1:
            name = f"{thai_first[k % 10]} {thai_last[k // 10]}"
        else:  # English names at the Thai companies
            name = f"{english_first[i % 7]} {english_last[(i // 7) % 5]}"
            company = FILE_COMPANIES[2 + 2 * (i % 2)]
        rows.append(
            [
                name,
                f"c{i:03d}@import.example",
                company,
                titles[(i // 2) % 5],
                f"+66 2 {100_0000 + i}",
                cities[i % 5],
                "import, 2026" if i % 4 == 0 else "",
            ]
        )
    for i in (10, 50, 90):
        rows[i][1] = "not-an-email"
    for i in (120, 160):
        rows[i][1] = ""
    rows[200][4] = "call me maybe"
    rows[250][1] = rows[249][1]  # a duplicate: reported, not imported
    rows[299] = ["สมชาย ใจดี", SOMCHAI_EMAIL, "", "ผู้อำนวยการ", "", "", ""]  # updates his job title only
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Email", "公司", "职位", "Office line", "City", "Tags"])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8"), rows


def _verify_email(app, email: str) -> None:
    """The owner has confirmed their address (no reminder banner across the screenshots)."""
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("update users set email_verified_at = now() where email = :e"), {"e": email})


def test_company_contacts_call_search_and_import(app, factory, new_page, live_server, shot):
    from playwright.sync_api import expect

    base = live_server
    crm = factory.tenant(name="Lotus Trading 莲花贸易")
    _verify_email(app, crm.owner_email)
    home = f"{base}/{crm.slug}/customers"
    page = new_page()

    # Sign in through the login page, on the way to the companies.
    page.goto(f"{home}/companies")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(crm.owner_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{home}/companies")

    # A company through its form.
    page.get_by_role("link", name="New company").click()
    page.get_by_label("Name", exact=True).fill(COMPANY)
    page.get_by_label("Industry").fill("Wholesale")
    page.get_by_label("Website").fill("goldenlotus.example")
    page.get_by_label("Phones").fill("+86 21 5555 0100")
    page.get_by_label("City").fill("上海")
    page.get_by_role("button", name="Add company").click()
    expect(page.get_by_test_id("record-title")).to_have_text(COMPANY)
    expect(page.locator("#flash")).to_contain_text(f"Company {COMPANY} added.")
    company_url = page.url

    # 张伟 from the company's Contacts panel (the company comes filled in).
    page.get_by_role("link", name="Add a contact").click()
    expect(page.get_by_label("Company", exact=True)).to_have_value(COMPANY)
    page.get_by_label("First name").fill("伟")
    page.get_by_label("Last name").fill("张")
    page.get_by_label("Job title").fill("采购经理")
    page.get_by_label("Email", exact=True).fill("zhang.wei@goldenlotus.example")
    page.get_by_label("Phones").fill("+86 138 0013 8000")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_test_id("record-title")).to_have_text("张伟")  # family name first, no space
    expect(page.locator(".breadcrumb")).to_contain_text(COMPANY)
    zhang_url = page.url

    # A call on 张伟's timeline: htmx swaps the timeline in, the page is not reloaded.
    page.evaluate("window.__samePage = true")
    log_form = page.locator("form[data-activity-form]")
    log_form.locator("label", has_text="Call").click()
    log_form.get_by_label("Subject").fill("Spring order 春季订单")
    log_form.get_by_role("textbox", name="Text").fill("Wants 500 cartons before April; send the price list.")
    log_form.get_by_label("Minutes").fill("15")
    log_form.get_by_label("Direction").select_option("in")
    log_form.get_by_test_id("log-activity").click()
    expect(page.locator("#timeline").get_by_role("status").filter(has_text="Call logged.")).to_be_visible()
    call = page.locator("#timeline-entries li[data-kind=call]")
    expect(call).to_have_count(1)
    expect(call).to_contain_text("Call: Spring order 春季订单")
    expect(call).to_contain_text("15 min")
    expect(call).to_contain_text("incoming")
    expect(call).to_contain_text("Wants 500 cartons before April")
    # And a note after it, in the fresh form htmx put in.
    log_form.locator("label", has_text="Note").click()
    log_form.get_by_label("Subject").fill("Prefers WeChat")
    log_form.get_by_role("textbox", name="Text").fill("Send the catalogue in Chinese.")
    log_form.get_by_test_id("log-activity").click()
    expect(page.locator("#timeline-entries li[data-kind=note]")).to_contain_text("Note: Prefers WeChat")
    expect(page.locator("#timeline-entries > li:is([data-kind=call], [data-kind=note])")).to_have_count(2)
    assert page.evaluate("window.__samePage") is True

    # สมชาย ใจดี from the contact list, linked to the company by typing its name.
    page.goto(f"{home}/contacts")
    page.get_by_role("link", name="New contact").click()
    page.get_by_label("First name").fill("สมชาย")
    page.get_by_label("Last name").fill("ใจดี")
    page.get_by_label("Company", exact=True).fill(COMPANY)
    page.get_by_label("Email", exact=True).fill(SOMCHAI_EMAIL)
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_test_id("record-title")).to_have_text("สมชาย ใจดี")
    expect(page.locator(".breadcrumb")).to_contain_text(COMPANY)
    # 陳大文, with no company.
    page.goto(f"{home}/contacts/new")
    page.get_by_label("First name").fill("大文")
    page.get_by_label("Last name").fill("陳")
    page.get_by_label("Email", exact=True).fill("chan.taiman@example.hk")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_test_id("record-title")).to_have_text("陳大文")

    # The top bar's search, results as you type: one Chinese character finds 张伟.
    search = page.get_by_role("searchbox", name="Search customers")
    results = page.get_by_test_id("search-results")
    search.fill("伟")
    expect(results).to_contain_text("张伟")
    expect(results).not_to_contain_text("陳大文")
    results.get_by_role("link", name=re.compile("张伟")).click()
    expect(page).to_have_url(zhang_url)
    expect(page.get_by_test_id("record-title")).to_have_text("张伟")
    expect(page.locator("#timeline-entries li[data-kind=call]")).to_contain_text("Spring order")
    expect(page.get_by_test_id("key-figures")).not_to_contain_text("never")  # last contact: the call
    shot(page, "customers-360.png", full_page=True)

    # Part of a Thai name, typed key by key.
    search = page.get_by_role("searchbox", name="Search customers")
    search.press_sequentially("ชาย", delay=30)
    expect(results).to_contain_text("สมชาย ใจดี")
    expect(results).not_to_contain_text("张伟")
    results.get_by_role("link", name=re.compile("สมชาย")).click()
    expect(page.get_by_test_id("record-title")).to_have_text("สมชาย ใจดี")
    expect(page).to_have_url(re.compile(rf"{re.escape(home)}/contacts/\d+$"))

    # Import a CSV: upload, map the column the guess missed, dry run, then the job.
    content, rows = _import_file()
    page.goto(f"{home}/contacts")
    tabs = page.get_by_role("list", name="Customers")  # the module's own tabs under the top bar
    tabs.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Imports")).to_be_visible()
    page.get_by_role("link", name="Import a file").click()
    page.get_by_label("What the file holds").select_option("contact")
    page.get_by_label("File (CSV or XLSX)").set_input_files(
        {"name": "trade-fair-contacts.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import of trade-fair-contacts.csv")
    expect(page.get_by_label("Field for column 公司")).to_have_value("company")  # guessed from the header
    expect(page.get_by_label("Field for column 职位")).to_have_value("job_title")
    expect(page.get_by_label("Field for column Office line")).to_have_value("")
    page.get_by_label("Field for column Office line").select_option(label="Phones")
    expect(page.locator("table")).to_contain_text(rows[0][0])  # the preview
    page.get_by_role("button", name="Check every row (dry run)").click()
    created = ROWS - BAD_ROWS - 1
    expect(page.locator("#flash")).to_contain_text(
        f"Dry run: {ROWS} rows, {created} to add, 1 to update, {BAD_ROWS} with errors. Nothing was written."
    )
    page.get_by_role("button", name="Import", exact=True).click()

    # Queued: the page polls for progress. Nothing runs it until the worker below.
    progress = page.locator("#import-progress")
    bar = progress.get_by_role("progressbar")
    expect(page.locator("#flash")).to_contain_text("The import has started.")
    expect(progress).to_contain_text("Waiting")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    page.evaluate("window.__samePage = true")
    assert run_jobs(app) >= 1  # the import (and the welcome mail the sign-up queued)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(progress).to_contain_text("Done")
    expect(progress).to_contain_text(f"{ROWS} of {ROWS} rows")
    expect(progress.locator("[data-count=created]")).to_have_text(str(created))
    expect(progress.locator("[data-count=updated]")).to_have_text("1")
    expect(progress.locator("[data-count=errors]")).to_have_text(str(BAD_ROWS))
    expect(progress).not_to_have_attribute("hx-trigger", re.compile("every"))  # polling stopped
    assert page.evaluate("window.__samePage") is True  # updated in place, not reloaded

    # The result, with the bad rows and their report.
    progress.get_by_role("link", name="Show the result").click()
    errors = page.locator(".card", has=page.get_by_role("heading", name="Rows with errors"))
    expect(errors.locator("tbody tr")).to_have_count(BAD_ROWS)
    expect(errors).to_contain_text("not-an-email is not an email address.")
    expect(errors).to_contain_text("call me maybe is not a phone number.")
    expect(errors).to_contain_text("Duplicate of row")
    with page.expect_download() as download:
        errors.get_by_role("link", name="Error report (CSV)").click()
    report = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert len(report) == 1 + BAD_ROWS, report
    assert {r[3] for r in report[1:]} == {rows[i][0] for i in BAD}
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "customers-import.png", full_page=True)

    # The imported contacts are in the list, with their companies.
    tabs.get_by_role("link", name="Contacts").click()
    listing = page.get_by_test_id("contact-list")
    expect(page.get_by_test_id("load-more")).to_be_visible()  # more than a page
    filters = page.locator("form", has=page.get_by_label("Name contains"))
    filters.get_by_label("Sort by").select_option("-updated_at")  # the import's rows first
    filters.get_by_role("button", name="Apply").click()
    updated = listing.locator("thead th", has_text="Updated")
    expect(updated.locator(".bi-caret-down-fill")).to_be_visible()  # the sorted page is in
    expect(listing).to_contain_text("@import.example")
    shot(page, "customers-list.png")
    filters.get_by_label("Name contains").fill(rows[3][0])
    filters.get_by_role("button", name="Apply").click()
    expect(listing.locator("tbody tr")).to_have_count(1)
    expect(listing).to_contain_text(rows[3][1])
    expect(listing).to_contain_text(rows[3][2])  # linked to the file's company
    filters.get_by_label("Name contains").fill("สมชาย")
    filters.get_by_role("button", name="Apply").click()
    expect(listing).to_contain_text("ผู้อำนวยการ")  # the job title the import gave him
    expect(listing.locator("tbody tr")).to_have_count(1)
    expect(listing).to_contain_text(COMPANY)  # the file's blank company cell left his company alone

    # The companies: the file's new ones were added, the existing one was not added twice.
    tabs.get_by_role("link", name="Companies").click()
    companies = page.get_by_test_id("company-list")
    for name in FILE_COMPANIES:
        expect(companies.get_by_role("link", name=name, exact=True)).to_have_count(1)
    shot(page, "customers-companies.png")
    page.goto(company_url)
    linked = 2 + sum(1 for i, row in enumerate(rows) if row[2] == COMPANY and i not in BAD)  # 张伟, สมชาย
    expect(page.get_by_test_id("company-contacts").get_by_role("link")).to_have_count(10)  # the first ten
    expect(page.get_by_role("link", name=f"All {linked} contacts")).to_be_visible()
    shot(page, "customers-company-360.png", full_page=True)
