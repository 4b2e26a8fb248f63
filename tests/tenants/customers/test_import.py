"""Contact and company import: upload, detection, mapping, dry run, the job, re-runs, undo, bad input."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select

from tests.factories import db_state, run_jobs, sql_value, unique
from tests.tenants.customers.routes import make_import


def _upload(client, slug, content: bytes, name="people.csv", record_type="contact", encoding=""):
    return client.post(
        f"/{slug}/customers/imports/new",
        data={
            "csrf_token": client.csrf_token(),
            "record_type": record_type,
            "encoding": encoding,
            "file": (io.BytesIO(content), name),
        },
    )


def _import_id(resp) -> int:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1500]
    return int(re.search(r"/imports/(\d+)$", resp.headers["Location"]).group(1))


def _get(app, crm, import_id):
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.imports.models import Import

    with app.app_context(), tenancy.bound(crm.id, crm.schema, crm.slug):
        try:
            imp = db.session.get(Import, import_id)
            db.session.expunge(imp)
            return imp
        finally:
            db.session.remove()


def _count(app, crm, table="contacts", where="true", **params) -> int:
    return sql_value(app, f'select count(*) from "{crm.schema}"."{table}" where {where}', **params)


def _check(client, slug, import_id, mapping: dict[int, str] | None = None):
    url = f"/{slug}/customers/imports/{import_id}/check"
    if mapping is None:  # the page's own guess
        html = client.get(f"/{slug}/customers/imports/{import_id}").get_data(as_text=True)
        data = {}
        for name, value in re.findall(r'name="(col-\d+)".*?<option value="(\w+)" selected', html, re.S):
            data[name] = value
    else:
        data = {f"col-{i}": f for i, f in mapping.items()}
    resp = client.form(url, data)
    assert resp.status_code == 302
    return resp


def _run(app, client, slug, import_id):
    resp = client.form(f"/{slug}/customers/imports/{import_id}/start")
    assert resp.status_code == 302
    assert run_jobs(app) >= 1


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _people(n: int, tag: str) -> list[list[str]]:
    return [
        ["Name", "Email", "Job title"],
        *[[f"Person {i}", f"{tag}-{i}@example.com", "Clerk"] for i in range(n)],
    ]


def test_full_flow_creates_then_updates_then_undo(app, crm, login, monkeypatch):
    from tenants.customers.imports import services

    monkeypatch.setattr(services, "BATCH", 7)  # several batches, each its own transaction
    client = login("owner")
    tag = unique("flow")
    body = _csv(_people(30, tag)).encode()
    imp_id = _import_id(_upload(client, crm.slug, body))
    imp = _get(app, crm, imp_id)
    assert imp.mapping == {"0": "name", "1": "email", "2": "job_title"}
    page = client.get(f"/{crm.slug}/customers/imports/{imp_id}").get_data(as_text=True)
    assert f"{tag}-0@example.com" in page  # the preview

    _check(client, crm.slug, imp_id)
    imp = _get(app, crm, imp_id)
    assert (imp.status, imp.total_rows, imp.created_count, imp.error_count) == ("checked", 30, 30, 0)
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 0  # the dry run wrote nothing

    _run(app, client, crm.slug, imp_id)
    imp = _get(app, crm, imp_id)
    assert (imp.status, imp.created_count, imp.updated_count, imp.processed_rows) == ("done", 30, 0, 30)
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 30
    # Found by the global search straight away (the index was kept).
    hits = client.get(f"/{crm.slug}/customers/search?q={tag}-17").get_data(as_text=True)
    assert f"{tag}-17@example.com" in hits
    # One summary audit event, not one per row.
    assert _count(app, crm, "audit_log", "action = 'import' and entity_id = :i", i=str(imp_id)) == 1
    assert _count(app, crm, "audit_log", "entity = 'contacts' and action = 'insert' and changes::text like :p",
                  p=f"%{tag}-%") == 0  # fmt: skip


def test_rerun_updates_and_undo_restores(app, crm, login):
    client = login("owner")
    tag = unique("rerun")
    first = _import_id(_upload(client, crm.slug, _csv(_people(5, tag)).encode()))
    _check(client, crm.slug, first)
    _run(app, client, crm.slug, first)
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 5

    rows = [["Name", "Email", "Job title"], *[[f"Person {i}", f"{tag.upper()}-{i}@Example.com", "Boss"]
                                              for i in range(3)], ["New One", f"{tag}-new@example.com", "Boss"]]  # fmt: skip
    second = _import_id(_upload(client, crm.slug, _csv(rows).encode()))
    _check(client, crm.slug, second)
    imp = _get(app, crm, second)
    assert (imp.created_count, imp.updated_count) == (1, 3)
    _run(app, client, crm.slug, second)
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 6
    assert _count(app, crm, where="email like :p and job_title = 'Boss'", p=f"{tag}-%") == 4

    resp = client.form(f"/{crm.slug}/customers/imports/{second}/undo")
    assert resp.status_code == 302
    assert _get(app, crm, second).status == "undone"
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 5
    assert _count(app, crm, where="email like :p and job_title = 'Clerk'", p=f"{tag}-%") == 5
    assert _count(app, crm, "audit_log", "action = 'import_undo' and entity_id = :i", i=str(second)) == 1

    client.form(f"/{crm.slug}/customers/imports/{first}/undo")
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 0
    hits = client.get(f"/{crm.slug}/customers/search?q={tag}-1").get_data(as_text=True)
    assert f"{tag}-1@example.com" not in hits
    # Undone once is undone: a second undo changes nothing.
    before = db_state(app, crm.schema)
    client.form(f"/{crm.slug}/customers/imports/{first}/undo")
    assert db_state(app, crm.schema) == before


def test_ten_percent_bad_rows_and_error_report(app, crm, login):
    client = login("owner")
    tag = unique("bad")
    rows = [["Name", "Email", "Phone", "Notes"]]
    for i in range(100):
        name, email, phone = f"Row {i}", f"{tag}-{i}@example.com", "+66 2 123 4567"
        if i % 10 == 3:
            email = '=HYPERLINK("http://evil")'
        rows.append([name, email, phone, "x"])
    rows[50][0] = ""  # no name (row 51 of the file)
    rows[60][2] = "call me"  # not a phone number
    rows[70][1] = rows[2][1]  # a duplicate of file row 3
    rows[80][3] = "y" * 100_001  # an unmapped 100 KB cell is not looked at ...
    rows[90][0] = "z" * 102_401  # ... a mapped one is refused
    imp_id = _import_id(_upload(client, crm.slug, _csv(rows).encode()))
    _check(client, crm.slug, imp_id, {0: "name", 1: "email", 2: "phones"})
    imp = _get(app, crm, imp_id)
    bad_rows = {e["row"] for e in imp.errors}
    expected = {i + 2 for i in range(100) if i % 10 == 3} | {51, 61, 71, 91}
    assert bad_rows == expected
    assert imp.created_count == 100 - len(expected)
    reasons = {e["row"]: (e["column"], e["reason"]) for e in imp.errors}
    assert reasons[51][0] == "Name"
    assert reasons[61] == ("Phone", "call me is not a phone number.")
    assert reasons[71][0] == "Email" and "Duplicate of row 3" in reasons[71][1]
    assert reasons[91][0] == "Name" and "100 KB" in reasons[91][1]
    assert "is not an email address" in reasons[5][1]

    _run(app, client, crm.slug, imp_id)
    assert _count(app, crm, where="email like :p", p=f"{tag}-%") == 100 - len(expected)

    resp = client.get(f"/{crm.slug}/customers/imports/{imp_id}/errors.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    report = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert report[0][:3] == ["Row", "Column", "Reason"] and report[0][3:] == [
        "Name",
        "Email",
        "Phone",
        "Notes",
    ]
    assert [int(r[0]) for r in report[1:]] == sorted(expected)
    row5 = next(r for r in report if r[0] == "5")
    assert row5[4] == '\'=HYPERLINK("http://evil")'  # formula neutralised
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in report for cell in r)


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("gb18030", "张伟"), ("big5", "陳大文"), ("cp874", "สมชาย ใจดี"), ("utf-8-sig", "Zoë Ñandú")],
)
def test_encodings_are_detected(app, crm, login, encoding, name):
    client = login("owner")
    tag = unique("enc")
    headers = {"gb18030": "姓名,邮箱,电话,公司", "big5": "姓名,電郵,電話,公司",
               "cp874": "ชื่อ,อีเมล,โทรศัพท์,บริษัท", "utf-8-sig": "Name,Email,Phone,Company"}[encoding]  # fmt: skip
    company = {"gb18030": "北京科技有限公司", "big5": "香港貿易有限公司", "cp874": "บริษัท สยาม จำกัด",
               "utf-8-sig": "Café Ltd"}[encoding]  # fmt: skip
    lines = [headers] + [f"{name}{i},{tag}-{i}@example.com,+86 10 1234 567{i},{company}" for i in range(5)]
    content = "\r\n".join(lines).encode(encoding)
    imp_id = _import_id(_upload(client, crm.slug, content))
    imp = _get(app, crm, imp_id)
    assert imp.encoding == encoding
    assert imp.mapping == {"0": "name", "1": "email", "2": "phones", "3": "company"}
    _check(client, crm.slug, imp_id)
    assert _get(app, crm, imp_id).error_count == 0
    _run(app, client, crm.slug, imp_id)
    names = sql_value(
        app,
        f"select string_agg(c.full_name || '|' || co.name, ',' order by c.email) from \"{crm.schema}\".contacts c"
        f' join "{crm.schema}".companies co on co.id = c.company_id where c.email like :p',
        p=f"{tag}-%",
    )
    assert names.split(",")[0].startswith(name.replace(" ", "")[:1]) or name.split()[0] in names
    assert company in names
    assert _count(app, crm, "companies", "name = :n", n=company) == 1  # made once, used five times


def test_wrong_encoding_chosen_is_a_clear_answer(app, crm, login):
    client = login("owner")
    tag = unique("wrong")
    content = f"Name,Email\r\n张伟,{tag}@example.com\r\n".encode("gb18030")
    before = db_state(app, crm.schema)
    resp = _upload(client, crm.slug, content, encoding="utf-8-sig")
    assert resp.status_code == 422
    assert "The file is not valid Unicode (UTF-8) (near row 1): choose its encoding." in resp.get_data(
        as_text=True
    )
    assert db_state(app, crm.schema) == before
    # Detected, the same file is read right.
    imp_id = _import_id(_upload(client, crm.slug, content))
    assert _get(app, crm, imp_id).encoding == "gb18030"


def test_xlsx(app, crm, login):
    from openpyxl import Workbook

    client = login("owner")
    tag = unique("xl")
    book = Workbook()
    sheet = book.active
    sheet.append(["Company", "Website", "Phone", "Industry"])
    for i in range(4):
        sheet.append([f"{tag} Co {i}", f"www.{tag}-{i}.example.com", 6621234567 + i, "Retail"])
    buf = io.BytesIO()
    book.save(buf)
    imp_id = _import_id(
        _upload(client, crm.slug, buf.getvalue(), name="companies.xlsx", record_type="company")
    )
    imp = _get(app, crm, imp_id)
    assert imp.file_format == "xlsx" and imp.encoding is None
    # "Company" is the company's name on a company import: mapped by hand.
    _check(client, crm.slug, imp_id, {0: "name", 1: "website", 2: "phones", 3: "industry"})
    assert _get(app, crm, imp_id).created_count == 4
    _run(app, client, crm.slug, imp_id)
    assert _count(app, crm, "companies", "domain like :p and industry = 'Retail'", p=f"{tag}-%") == 4
    # Again, renamed: found by the domain, so updated.
    book = Workbook()
    book.active.append(["Name", "Website"])
    book.active.append(["Renamed", f"https://{tag}-1.example.com/about"])
    buf = io.BytesIO()
    book.save(buf)
    again = _import_id(_upload(client, crm.slug, buf.getvalue(), name="more.xlsx", record_type="company"))
    _check(client, crm.slug, again)
    assert (_get(app, crm, again).created_count, _get(app, crm, again).updated_count) == (0, 1)
    # Written with their duplicate keys (COPY), then updated (the update path) by the domain.
    assert (
        _count(app, crm, "companies", "domain = :d and phone_keys = '{21234568}'", d=f"{tag}-1.example.com")
        == 1
    )
    _run(app, client, crm.slug, again)
    assert _count(app, crm, "companies", "domain = :d and name = 'Renamed'", d=f"{tag}-1.example.com") == 1
    hits = client.get(f"/{crm.slug}/customers/search?q=Renamed").get_data(as_text=True)
    assert f"{tag}-1.example.com" in hits or "Renamed" in hits


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"\n\n  \n", "blank.csv", "The file is empty: it has no header row."),
        (b"Name,Email\n", "people.exe", "Upload a CSV file (.csv) or an Excel workbook (.xlsx)."),
        (b"not a zip", "book.xlsx", "The file is not an Excel workbook (.xlsx) that can be read."),
    ],
)
def test_bad_files_are_refused_and_nothing_is_written(app, crm, login, content, name, message):
    client = login("owner")
    before = db_state(app, crm.schema)
    resp = _upload(client, crm.slug, content, name=name)
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    assert db_state(app, crm.schema) == before


def test_missing_required_column_and_header_only(app, crm, login):
    client = login("owner")
    imp_id = _import_id(_upload(client, crm.slug, b"Name,Phone\nAnn,123456\n"))
    before = db_state(app, crm.schema)
    resp = _check(client, crm.slug, imp_id)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Map a column to Email" in page
    assert _get(app, crm, imp_id).status == "uploaded"
    after = db_state(app, crm.schema)
    after.pop(f"{crm.schema}.imports"), before.pop(f"{crm.schema}.imports")
    assert after == before

    header_only = _import_id(_upload(client, crm.slug, b"Name,Email\n"))
    page = client.get(f"/{crm.slug}/customers/imports/{header_only}").get_data(as_text=True)
    assert "The file has no rows under its header." in page
    _check(client, crm.slug, header_only)
    assert _get(app, crm, header_only).total_rows == 0


def test_records_the_importer_may_not_see_are_not_updated(app, crm, login):
    from tenants.customers import services
    from tests.tenants.customers.conftest import in_tenant, viewer_of

    email = f"{unique('hidden')}@example.com"
    with in_tenant(app, crm):
        services.create_contact(viewer_of(crm, "owner"), {"first_name": "Hidden", "email": email})
    client = login("sales")  # visibility "own"
    imp_id = _import_id(_upload(client, crm.slug, f"Name,Email\nTaken Over,{email}\n".encode()))
    _check(client, crm.slug, imp_id)
    imp = _get(app, crm, imp_id)
    assert imp.updated_count == 0 and imp.error_count == 1
    assert "not one you may change" in imp.errors[0]["reason"]
    _run(app, client, crm.slug, imp_id)
    assert _count(app, crm, where="email = :e and first_name = 'Hidden'", e=email) == 1


def test_roles_and_other_tenants(app, crm, other, login):
    assert _upload(login("support"), crm.slug, b"Name,Email\nA,a@example.com\n").status_code == 403
    client = login("owner")
    imp_id = _import_id(_upload(client, crm.slug, b"Name,Email\nA,a@example.com\n"))
    assert client.get(f"/{crm.slug}/customers/imports/{imp_id}").status_code == 200
    theirs = make_import(app, other, other.people["owner"][0])  # an id that is not also one of crm's
    for suffix in ("", "/progress", "/errors.csv"):
        assert client.get(f"/{crm.slug}/customers/imports/{theirs}{suffix}").status_code == 404
    before = db_state(app, "public", crm.schema, other.schema)
    for action in ("check", "start", "undo"):
        resp = client.form(
            f"/{crm.slug}/customers/imports/{theirs}/{action}", {"col-0": "name", "col-1": "email"}
        )
        assert resp.status_code == 404
    assert db_state(app, "public", crm.schema, other.schema) == before
    # A sales member (visibility "own") does not see the owner's import either.
    assert login("sales").get(f"/{crm.slug}/customers/imports/{imp_id}").status_code == 404


def test_progress_partial_polls_while_running(app, crm, login):
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.imports import services

    client = login("owner")
    imp_id = _import_id(_upload(client, crm.slug, _csv(_people(3, unique("prog"))).encode()))
    with app.app_context(), tenancy.bound(crm.id, crm.schema, crm.slug):
        services._set(imp_id, status="running", total_rows=3, processed_rows=1)
        db.session.commit()
        db.session.remove()
    html = client.get(
        f"/{crm.slug}/customers/imports/{imp_id}/progress", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in html and "33%" in html and "<html" not in html


def test_guess_mapping_in_three_languages():
    from tenants.customers.imports.reading import guess_mapping
    from tenants.customers.imports.services import FIELDS

    fields = FIELDS["contact"]
    assert guess_mapping(["名字", "電郵", "手機", "公司"], fields) == {
        "0": "name", "1": "email", "2": "phones", "3": "company"}  # fmt: skip
    assert guess_mapping(["ชื่อ", "อีเมล", "โทรศัพท์", "บริษัท"], fields) == {
        "0": "name", "1": "email", "2": "phones", "3": "company"}  # fmt: skip
    assert guess_mapping(["First Name", "last_name", "E-mail", "Unknown"], fields) == {
        "0": "first_name", "1": "last_name", "2": "email"}  # fmt: skip


def test_no_duplicate_contacts_count(app, crm):
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.models import Contact

    with app.app_context(), tenancy.bound(crm.id, crm.schema, crm.slug):
        dupes = db.session.execute(
            select(Contact.email)
            .where(Contact.email.is_not(None))
            .group_by(Contact.email)
            .having(func.count() > 1)
        ).all()
        db.session.remove()
    assert dupes == []


def test_control_characters_are_dropped_and_line_breaks_kept():
    from tenants.customers.imports.services import clean_row

    values = clean_row(
        "contact",
        {
            "name": "Ann\x00 Lee\x1b",
            "email": "ann@example.com",
            "job_title": "Buyer\x07",
            "city": "陳\x7f村",
            "company": "Acme\x0b Ltd",
            "interests": "tea\nand\tcake",
        },
    )
    assert (values["first_name"], values["last_name"], values["job_title"]) == ("Ann", "Lee", "Buyer")
    assert values["city"] == "陳村" and values["company"] == "Acme Ltd"
    assert values["interests"] == "tea\nand\tcake"  # not printable, but not control characters to drop
    assert clean_row("contact", {"name": "สมชาย ใจดี", "email": "s@example.com"})["last_name"] == "ใจดี"


def test_backslashes_tabs_quotes_and_line_breaks_survive_create_update_and_undo(app, crm, login):
    """Imports write COPY's text format themselves: every special character must come back as it was."""
    client = login("owner")
    tag = unique("esc")
    odd = 'O\\Brien "Q"\tTab'
    rows = [["Name", "Email", "Phone", "Job title", "Tags", "Interests"],
            [f"Ann {odd}", f"{tag}@example.com", "+66 2 123 4567 x 12", "C:\\temp\\N", 'a\\b;"x""y"',
             "line one\nline\ttwo \\N"]]  # fmt: skip
    first = _import_id(_upload(client, crm.slug, _csv(rows).encode()))
    _check(client, crm.slug, first)
    _run(app, client, crm.slug, first)
    where = "email = :e"
    got = sql_value(
        app,
        f'select json_build_array(full_name, job_title, tags, interests, phones, phone_keys)::text from "{crm.schema}".contacts where {where}',
        e=f"{tag}@example.com",
    )
    # (a name's runs of white space become one space)
    assert json.loads(got) == ['Ann O\\Brien "Q" Tab', "C:\\temp\\N", ["a\\b", '"x""y"'], "line one\nline\ttwo \\N",
                               ["+66 2 123 4567 x 12"], ["21234567"]]  # fmt: skip

    # A re-run that changes the odd values (the update path), then its undo (the previous values).
    rows[1][3], rows[1][5] = "D:\\new\\t", "tab\there \\\\ back"
    second = _import_id(_upload(client, crm.slug, _csv(rows).encode()))
    _check(client, crm.slug, second)
    _run(app, client, crm.slug, second)
    got = sql_value(
        app,
        f'select json_build_array(job_title, interests)::text from "{crm.schema}".contacts where {where}',
        e=f"{tag}@example.com",
    )
    assert json.loads(got) == ["D:\\new\\t", "tab\there \\\\ back"]
    client.form(f"/{crm.slug}/customers/imports/{second}/undo")
    got = sql_value(
        app,
        f'select json_build_array(job_title, interests)::text from "{crm.schema}".contacts where {where}',
        e=f"{tag}@example.com",
    )
    assert json.loads(got) == ["C:\\temp\\N", "line one\nline\ttwo \\N"]


def test_a_company_named_in_several_batches_is_made_once(app, crm, login, monkeypatch):
    """Each batch is looked up on a connection that does not see the batches before it (not yet
    committed): the companies a run makes are remembered, not made again."""
    from tenants.customers.imports import services

    monkeypatch.setattr(services, "BATCH", 3)
    client = login("owner")
    tag = unique("firm")
    rows = [
        ["Name", "Email", "Company"],
        *[[f"P {i}", f"{tag}-{i}@example.com", f"{tag} Ltd"] for i in range(10)],
    ]
    imp_id = _import_id(_upload(client, crm.slug, _csv(rows).encode()))
    _check(client, crm.slug, imp_id)
    _run(app, client, crm.slug, imp_id)
    assert _count(app, crm, "companies", "name = :n", n=f"{tag} Ltd") == 1
    assert _count(app, crm, where="email like :p and company_id is not null", p=f"{tag}-%") == 10
    # Undo takes the company away with the contacts.
    client.form(f"/{crm.slug}/customers/imports/{imp_id}/undo")
    assert _count(app, crm, "companies", "name = :n", n=f"{tag} Ltd") == 0
