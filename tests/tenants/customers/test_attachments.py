"""Attachments: the local folder and S3 (moto's real S3 API server), limits, types, isolation, visibility."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from tests.factories import unique
from tests.tenants.customers.conftest import in_tenant
from tests.tenants.customers.routes import make_attachment

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n%fake but well-begun\n"


def _company(app, info, owner_role: str = "sales", company_id: int | None = None) -> int:
    from saas.extensions import db
    from tenants.customers.models import Company

    with in_tenant(app, info):
        company = Company(id=company_id, name=unique("Files Co "), owner_id=info.people[owner_role][0])
        db.session.add(company)
        db.session.commit()
        return company.id


def _rows(app, info, record_type: str, record_id: int) -> list:
    from tenants.customers import attachments

    with in_tenant(app, info):
        return [
            (a.id, a.file_name, a.content_type, a.size, a.storage_key)
            for a in attachments.record_attachments(record_type, record_id)
        ]


def _upload(client, url: str, name: str, data: bytes):
    return client.form(url, {"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _flash(client, resp) -> str:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return client.get(resp.headers["Location"]).get_data(as_text=True)


def test_upload_list_download_delete_in_the_local_folder(app, crm, login):
    client = login("owner")
    company_id = _company(app, crm)
    base = f"/{crm.slug}/customers"
    resp = _upload(client, f"{base}/companies/{company_id}/attachments", "../../etc/Quote 2026.pdf", PDF)
    page = _flash(client, resp)
    assert "Quote 2026.pdf attached." in page
    [(att_id, name, ctype, size, key)] = _rows(app, crm, "company", company_id)
    assert (name, ctype, size) == ("Quote 2026.pdf", "application/pdf", len(PDF))
    assert key.startswith(f"{crm.id}/") and ".." not in key and "Quote" not in key
    stored = Path(app.instance_path) / "attachments" / key
    assert stored.read_bytes() == PDF
    assert 'data-testid="record-attachments"' in page and "Quote 2026.pdf" in page

    got = client.get(f"{base}/attachments/{att_id}")
    assert got.status_code == 200 and got.data == PDF
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    # Contacts too.
    contact_page = client.form(
        f"{base}/contacts/new", {"first_name": unique("Ann "), "lifecycle_stage": "lead"}
    )
    contact_id = int(contact_page.headers["Location"].rsplit("/", 1)[-1])
    _flash(client, _upload(client, f"{base}/contacts/{contact_id}/attachments", "logo.png", PNG))
    assert [r[1] for r in _rows(app, crm, "contact", contact_id)] == ["logo.png"]

    # Sales may not delete (customers:delete); the owner may.
    assert login("sales").form(f"{base}/attachments/{att_id}/delete").status_code == 403
    assert stored.exists()
    page = _flash(client, client.form(f"{base}/attachments/{att_id}/delete"))
    assert "Quote 2026.pdf deleted." in page
    assert _rows(app, crm, "company", company_id) == [] and not stored.exists()
    assert client.get(f"{base}/attachments/{att_id}").status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("setup.exe", b"MZ\x90\x00", "Files of this type cannot be attached"),
        ("noextension", b"hello", "Files of this type cannot be attached"),
        ("photo.png", b"<script>alert(1)</script>", "does not match its type (.png)"),
        ("report.pdf", PNG, "does not match its type (.pdf)"),
        ("notes.txt", b"abc\x00def", "does not match its type (.txt)"),
        ("sheet.xlsx", b"not a zip", "does not match its type (.xlsx)"),
        ("empty.txt", b"", "The file is empty."),
    ],
)
def test_refused_types(app, crm, login, name, data, message):
    client = login("sales")
    company_id = _company(app, crm)
    page = _flash(
        client, _upload(client, f"/{crm.slug}/customers/companies/{company_id}/attachments", name, data)
    )
    assert message in page
    assert _rows(app, crm, "company", company_id) == []


def test_size_limit(app, crm, login, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_ATTACHMENT_MAX_BYTES", 1024 * 1024)
    client = login("sales")
    company_id = _company(app, crm)
    url = f"/{crm.slug}/customers/companies/{company_id}/attachments"
    page = _flash(client, _upload(client, url, "big.txt", b"x" * (1024 * 1024 + 1)))
    assert "The file is too large: at most 1 MB." in page
    assert _rows(app, crm, "company", company_id) == []
    assert "attached." in _flash(client, _upload(client, url, "fits.txt", b"x" * (1024 * 1024)))


def test_no_file_chosen(app, crm, login):
    client = login("sales")
    company_id = _company(app, crm)
    page = _flash(client, client.form(f"/{crm.slug}/customers/companies/{company_id}/attachments", {}))
    assert "Choose a file to attach." in page


def test_other_tenants_attachment_is_404(app, crm, other, login):
    theirs = _company(app, other, "owner", random.randrange(10**12, 10**13))  # no id of crm's
    att_id = make_attachment(app, other, "company", theirs)
    client = login("owner")
    base = f"/{crm.slug}/customers"
    assert client.get(f"{base}/attachments/{att_id}").status_code == 404
    assert client.form(f"{base}/attachments/{att_id}/delete").status_code == 404
    assert (
        client.form(
            f"{base}/companies/{theirs}/attachments", {"file": (io.BytesIO(b"x"), "a.txt")}
        ).status_code
        == 404
    )
    assert [r[0] for r in _rows(app, other, "company", theirs)] == [att_id]
    # Their own owner still gets it.
    assert login("owner", other).get(f"/{other.slug}/customers/attachments/{att_id}").data == b"target file"


def test_visibility_of_the_record_applies(app, crm, login):
    owners_company = _company(app, crm, "owner")
    att_id = make_attachment(app, crm, "company", owners_company, crm.people["owner"][0])
    url = f"/{crm.slug}/customers/attachments/{att_id}"
    assert login("sales").get(url).status_code == 404  # sales sees its own records only
    assert login("read_only").get(url).status_code == 200  # read_only sees all
    page = login("sales").get(f"/{crm.slug}/customers/companies/{owners_company}")
    assert page.status_code == 404


def test_unknown_record_type_is_not_attachable(app, crm):
    from tenants.customers import attachments
    from tenants.customers.errors import NotFound
    from tests.tenants.customers.conftest import viewer_of

    with in_tenant(app, crm), pytest.raises(NotFound):
        attachments.upload(viewer_of(crm, "owner"), "deal", 1, "a.txt", io.BytesIO(b"x"))


# S3, against moto's standalone S3 API server --------------------------------------------------


def test_s3_storage(app, crm, login, s3):
    client_s3, bucket = s3
    client = login("owner")
    company_id = _company(app, crm)
    base = f"/{crm.slug}/customers"
    page = _flash(
        client, _upload(client, f"{base}/companies/{company_id}/attachments", "plan.docx", b"PK\x03\x04docx")
    )
    assert "plan.docx attached." in page
    [(att_id, _name, ctype, _size, key)] = _rows(app, crm, "company", company_id)
    assert "wordprocessingml" in ctype
    head = client_s3.head_object(Bucket=bucket, Key=f"attachments/{key}")
    assert head["ServerSideEncryption"] == "AES256"
    assert not (Path(app.instance_path) / "attachments" / key).exists()

    got = client.get(f"{base}/attachments/{att_id}")
    assert got.status_code == 200 and got.data == b"PK\x03\x04docx"

    _flash(client, client.form(f"{base}/attachments/{att_id}/delete"))
    listed = client_s3.list_objects_v2(Bucket=bucket, Prefix=f"attachments/{crm.id}/")
    assert listed.get("KeyCount", 0) == 0
