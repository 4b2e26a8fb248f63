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


# Deleted records: their attachments are purged once no undo can bring them back ---------------


def _attach(app, info, record_type: str, record_id: int, name: str = "deal.pdf") -> tuple[int, str]:
    """An attachment uploaded the normal way (the configured storage); (id, storage key)."""
    from tenants.customers import attachments
    from tests.tenants.customers.conftest import viewer_of

    with in_tenant(app, info):
        row = attachments.upload(viewer_of(info, "owner"), record_type, record_id, name, io.BytesIO(PDF))
        return row.id, row.storage_key


def _contact(app, info) -> int:
    from tenants.customers import services
    from tests.tenants.customers.conftest import viewer_of

    with in_tenant(app, info):
        return services.create_contact(viewer_of(info, "owner"), {"first_name": unique("Filed ")}).id


def _purge(app, info) -> int:
    from workers.attachments import tenant_attachment_purge

    with app.app_context():
        return tenant_attachment_purge(info.id)


def _row_there(app, info, att_id: int) -> bool:
    from saas.extensions import db
    from tenants.customers.extra_models import Attachment

    with in_tenant(app, info):
        return db.session.get(Attachment, att_id) is not None


def _stored(app, key: str) -> Path:
    return Path(app.instance_path) / "attachments" / key


def _purge_entry(app, info, att_id: int) -> tuple[str, dict] | None:
    """The summary and changes of the audit entry of the purge run that took this attachment."""
    from sqlalchemy import select

    from saas.extensions import db
    from tenants.admin.models import AuditEvent

    with in_tenant(app, info):
        for summary, changes in db.session.execute(
            select(AuditEvent.summary, AuditEvent.changes)
            .where(
                AuditEvent.action == "delete",
                AuditEvent.entity == "attachments",
                AuditEvent.entity_id.is_(None),
            )
            .order_by(AuditEvent.id.desc())
        ):
            if att_id in changes["id"][0]:
                return summary, changes
    return None


def _purge_entries(app, info) -> int:
    from sqlalchemy import func, select

    from saas.extensions import db
    from tenants.admin.models import AuditEvent

    with in_tenant(app, info):
        return db.session.scalar(
            select(func.count()).where(
                AuditEvent.action == "delete",
                AuditEvent.entity == "attachments",
                AuditEvent.entity_id.is_(None),
            )
        )


def _bulk_delete(app, info, record_type: str, record_id: int, hours_ago: float = 0) -> int:
    """Delete in a bulk batch (made `hours_ago`); the batch id."""
    from datetime import UTC, datetime, timedelta

    from saas.extensions import db
    from tenants.customers import bulk
    from tests.tenants.customers.conftest import viewer_of

    with in_tenant(app, info):
        batch = bulk.run(viewer_of(info, "owner"), record_type, "delete", [record_id])
        batch.created_at = datetime.now(UTC) - timedelta(hours=hours_ago)
        db.session.commit()
        return batch.id


@pytest.mark.parametrize(("how", "record_type"), [("page", "company"), ("api", "contact")])
def test_single_delete_purges_file_then_row(app, crm, login, how, record_type):
    from tests.tenants.api.conftest import Api, make_token

    record_id = _company(app, crm) if record_type == "company" else _contact(app, crm)
    att_id, key = _attach(app, crm, record_type, record_id)
    kept_id, kept_key = _attach(app, crm, "company", _company(app, crm))  # a live record's
    kind = "companies" if record_type == "company" else "contacts"
    if how == "page":
        assert login("owner").form(f"/{crm.slug}/customers/{kind}/{record_id}/delete").status_code == 302
    else:
        api = Api(app.test_client(), crm.slug, make_token(app, crm))
        assert api.delete(f"{kind}/{record_id}").status_code == 204
    # The delete itself removes nothing from storage (a rollback could not bring a file back).
    assert _stored(app, key).read_bytes() == PDF and _row_there(app, crm, att_id)
    assert login("owner").get(f"/{crm.slug}/customers/attachments/{att_id}").status_code == 404

    entries = _purge_entries(app, crm)
    assert _purge(app, crm) >= 1
    assert not _stored(app, key).exists() and not _row_there(app, crm, att_id)
    summary, changes = _purge_entry(app, crm, att_id)
    assert f"{record_type} {record_id}" in changes["record"][0] and "purged (files and rows)" in summary
    assert _purge_entries(app, crm) == entries + 1  # one entry for the whole run
    page = login("owner").get(f"/{crm.slug}/admin/audit?entity=attachments")
    assert page.status_code == 200 and summary in page.get_data(as_text=True)
    # The live record keeps its attachment; a second run finds nothing left to do.
    assert _stored(app, kept_key).read_bytes() == PDF and _row_there(app, crm, kept_id)
    assert _purge(app, crm) == 0
    assert _row_there(app, crm, kept_id)


def test_bulk_delete_undo_brings_the_attachment_back(app, crm, login):
    from tenants.customers import bulk
    from tests.tenants.customers.conftest import viewer_of

    company_id = _company(app, crm)
    att_id, key = _attach(app, crm, "company", company_id, "contract.pdf")
    batch_id = _bulk_delete(app, crm, "company", company_id, hours_ago=23)
    _purge(app, crm)  # within the undo window: nothing of it goes
    assert _stored(app, key).read_bytes() == PDF and _row_there(app, crm, att_id)

    with in_tenant(app, crm):
        bulk.undo(viewer_of(crm, "owner"), batch_id)
    client = login("owner")
    got = client.get(f"/{crm.slug}/customers/attachments/{att_id}")
    assert got.status_code == 200 and got.data == PDF
    assert "contract.pdf" in client.get(f"/{crm.slug}/customers/companies/{company_id}").get_data(
        as_text=True
    )
    _purge(app, crm)  # the record is back: its attachment stays for good
    assert _stored(app, key).read_bytes() == PDF and _row_there(app, crm, att_id)


def test_bulk_delete_not_undone_is_purged_after_the_window(app, crm):
    from datetime import UTC, datetime, timedelta

    from saas.extensions import db
    from tenants.customers import bulk, list_models
    from tenants.customers.errors import CustomerError
    from tenants.customers.list_models import BulkBatch
    from tests.tenants.customers.conftest import viewer_of

    contact_id = _contact(app, crm)
    att_id, key = _attach(app, crm, "contact", contact_id)
    # Just past the undo window: undo refuses, but the purge waits out its hour of grace.
    batch_id = _bulk_delete(app, crm, "contact", contact_id, hours_ago=24.5)
    with in_tenant(app, crm), pytest.raises(CustomerError, match="too late"):
        bulk.undo(viewer_of(crm, "owner"), batch_id)
    _purge(app, crm)
    assert _stored(app, key).exists() and _row_there(app, crm, att_id)

    with in_tenant(app, crm):
        batch = db.session.get(BulkBatch, batch_id)
        batch.created_at = (
            datetime.now(UTC) - list_models.UNDO_WINDOW - list_models.PURGE_GRACE - timedelta(minutes=1)
        )
        db.session.commit()
    assert _purge(app, crm) >= 1
    assert not _stored(app, key).exists() and not _row_there(app, crm, att_id)
    assert _purge_entry(app, crm, att_id) is not None


def test_purge_touches_only_its_own_tenant(app, crm, other):
    from tenants.customers import services
    from tests.tenants.customers.conftest import viewer_of

    theirs = _company(app, other, "owner")
    their_id, their_key = _attach(app, other, "company", theirs)
    with in_tenant(app, other):
        services.delete_company(viewer_of(other, "owner"), theirs)
    mine = _company(app, crm)
    my_id, my_key = _attach(app, crm, "company", mine)

    _purge(app, crm)
    assert _stored(app, their_key).read_bytes() == PDF and _row_there(app, other, their_id)
    assert _stored(app, my_key).read_bytes() == PDF and _row_there(app, crm, my_id)
    # Their own run does purge it (so it was purgeable), and still leaves crm's live record alone.
    assert _purge(app, other) >= 1
    assert not _stored(app, their_key).exists() and not _row_there(app, other, their_id)
    assert _stored(app, my_key).exists() and _row_there(app, crm, my_id)


def test_purge_is_scheduled_hourly_and_fans_out_per_tenant(app, crm):
    from tenants.customers import services
    from tests.factories import run_jobs
    from tests.tenants.customers.conftest import viewer_of
    from workers.attachments import fan_out_attachment_purge
    from workers.schedules import register_periodic

    seen = {}

    class Cron:
        def register(self, func, queue_name, cron):
            seen[func] = (queue_name, cron)

    register_periodic(Cron())
    assert seen[fan_out_attachment_purge] == ("low", "47 * * * *")

    company_id = _company(app, crm)
    att_id, key = _attach(app, crm, "company", company_id)
    with in_tenant(app, crm):
        services.delete_company(viewer_of(crm, "owner"), company_id)
    with app.app_context():
        assert fan_out_attachment_purge() >= 2  # every workspace not deleted
    run_jobs(app)
    assert not _stored(app, key).exists() and not _row_there(app, crm, att_id)


def test_s3_single_delete_then_purge(app, crm, s3):
    from tenants.customers import services
    from tests.tenants.customers.conftest import viewer_of

    client_s3, bucket = s3
    contact_id = _contact(app, crm)
    att_id, key = _attach(app, crm, "contact", contact_id)
    kept_id, kept_key = _attach(app, crm, "contact", _contact(app, crm))
    client_s3.head_object(Bucket=bucket, Key=f"attachments/{key}")
    with in_tenant(app, crm):
        services.delete_contact(viewer_of(crm, "owner"), contact_id)
    client_s3.head_object(Bucket=bucket, Key=f"attachments/{key}")  # still there until the purge

    _purge(app, crm)
    listed = client_s3.list_objects_v2(Bucket=bucket, Prefix=f"attachments/{crm.id}/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [f"attachments/{kept_key}"]
    assert not _row_there(app, crm, att_id) and _row_there(app, crm, kept_id)
