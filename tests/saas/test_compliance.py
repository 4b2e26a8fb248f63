"""Personal data: exports made by a real RQ worker (local folder and moto's S3), expiring links, erasure
everywhere (search and audit log included), the registry, staff users, the whole-tenant export,
tenant deletion with its grace period, the consent ledger, retention, crashes and retries, isolation."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

import pytest
from sqlalchemy import text

from tests.factories import (
    CsrfClient,
    Factory,
    TenantInfo,
    add_member,
    db_state,
    release_retries,
    run_jobs,
    sql_value,
    unique,
)

PDF = b"%PDF-1.4\n%personal scan of a passport\n"


# Helpers ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crm(app) -> TenantInfo:
    return Factory(app).tenant(roles=("owner", "admin", "sales"), name=unique("Privacy Co "))


def signed_in(app, email: str) -> CsrfClient:
    app.test_client_class = CsrfClient
    client = app.test_client()
    client.sign_in(email)
    return client


@contextmanager
def bound(app, info: TenantInfo, user_id: int | None = None):
    """A request context with the tenant bound (and an actor, as a signed-in request has)."""
    from saas import audit, tenancy
    from saas.extensions import db

    with app.test_request_context(), tenancy.bound(info.id, info.schema, info.slug):
        token = audit.set_actor(audit.Actor(user_id=user_id, email=f"user{user_id}@example.com"))
        try:
            yield
        finally:
            audit._actor.reset(token)
            db.session.rollback()
            db.session.remove()


def owner_viewer(info: TenantInfo):
    from tenants.customers.people import Viewer

    return Viewer(info.people["owner"][0], "all")


def make_contact(app, info: TenantInfo, first: str = "Zelda", last: str | None = None, **extra) -> int:
    """A contact with a full history: timeline entry, task, stage change, attachment, consent, import row."""
    from saas.extensions import db
    from tenants.customers import attachments, services, tasks, timeline
    from tenants.customers.imports.models import Import, ImportRecord

    last = last or unique("Quixote")
    viewer = owner_viewer(info)
    with bound(app, info, viewer.user_id):
        contact = services.create_contact(
            viewer,
            {
                "first_name": first,
                "last_name": last,
                "email": f"{last.lower()}@example.com",
                "phones": "+66 2 555 0101",
                "birthday": "1980-04-05",
                "interests": f"{last} likes sailing",
                "street": "1 Secret Lane",
                "city": "Bangkok",
                "consent_email": True,
                "consent_email_how": f"web form signed by {last}",
                **extra,
            },
        )
        cid = contact.id
        timeline.log_activity(viewer, "contact", cid, "note", body=f"Met {first} {last} about the boat")
        tasks.create_task(
            viewer, {"title": f"Call {last} back", "notes": f"{last} prefers mornings"}, contact_id=cid
        )
        services.change_stage(viewer, "contact", cid, "prospect")
        services.update_contact(viewer, cid, {"job_title": f"Captain {last}"})
        attachments.upload(viewer, "contact", cid, f"passport-{last}.pdf", io.BytesIO(PDF))
        imp = Import(
            record_type="contact",
            status="done",
            file_name="people.csv",
            file_format="csv",
            storage_key=f"{info.id}/{unique('imp')}.csv",
            errors=[
                {"row": 3, "column": "Email", "reason": "bad", "values": [f"{last.lower()}@example.com"]}
            ],
        )
        db.session.add(imp)
        db.session.flush()
        db.session.add(
            ImportRecord(import_id=imp.id, record_type="contact", record_id=cid, previous={"city": "Paris"})
        )
        db.session.commit()
    return cid


def execute(app, sql: str, **params: object) -> None:
    """Raw SQL on the test database, committed (to age rows, expire links...)."""
    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(sql), params)


def export_row(app, export_id: int) -> dict:
    from saas.compliance.models import PrivacyExport
    from saas.extensions import db

    with app.app_context():
        row = db.session.get(PrivacyExport, export_id)
        out = {
            c: getattr(row, c) for c in ("status", "storage_key", "expires_at", "error", "attempts", "kind")
        }
        db.session.remove()
    return out


def last_export_id(app, info: TenantInfo) -> int:
    return sql_value(app, "select max(id) from public.privacy_exports where tenant_id = :t", t=info.id)


def stored_zip(app, key: str) -> zipfile.ZipFile:
    with app.app_context():
        from saas.storage import storage

        data = storage("exports").get(key)
    assert data is not None, key
    return zipfile.ZipFile(io.BytesIO(data))


def audit_text(app, info: TenantInfo) -> str:
    return sql_value(
        app,
        f"select coalesce(string_agg(summary || changes::text, chr(10)), '') from \"{info.schema}\".audit_log",
    )


def audit_actions(app, info: TenantInfo) -> list[str]:
    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return list(conn.execute(text(f'select action from "{info.schema}".audit_log order by id')).scalars())


@pytest.fixture
def dummy_module():
    """A module registered after everything else (as a later module would): records its calls."""
    from saas.compliance import registry

    calls: list[tuple[str, object]] = []

    def exporter(subject):
        calls.append(("export", subject))
        return {
            "json": {"seen": subject.kind, "id": subject.id},
            "files": [("notes/hello.txt", b"dummy bytes")],
        }

    def eraser(subject):
        calls.append(("erase", subject))
        return {"dummy_rows_erased": 2}

    registry.register("dummy", exporter, eraser)
    yield calls
    registry.unregister("dummy")


# Export of one contact ----------------------------------------------------------------------------


def test_contact_export_holds_every_related_row_and_the_attachment_bytes(app, crm):
    cid = make_contact(app, crm)
    owner = signed_in(app, crm.owner_email)
    resp = owner.form(f"/{crm.slug}/privacy/contacts/{cid}/export")
    assert resp.status_code == 302
    export_id = last_export_id(app, crm)
    assert export_row(app, export_id)["status"] == "queued"
    assert run_jobs(app) >= 1
    row = export_row(app, export_id)
    assert row["status"] == "done" and row["storage_key"] == f"compliance/{crm.id}/{export_id}.zip"
    assert row["expires_at"] > datetime.now(UTC) + timedelta(days=6)

    zf = stored_zip(app, row["storage_key"])
    data = json.loads(zf.read("customers.json"))
    assert data["contact"]["id"] == cid and data["contact"]["first_name"] == "Zelda"
    assert data["contact"]["birthday"] == "1980-04-05" and data["contact"]["phones"] == ["+66 2 555 0101"]
    assert "search_text" not in data["contact"]
    kinds = sorted(a["kind"] for a in data["timeline"])
    assert kinds == ["note", "stage_change", "stage_change"]
    assert [t["title"] for t in data["tasks"]][0].startswith("Call ")
    assert [c["to_stage"] for c in data["lifecycle_changes"]] == ["lead", "prospect"]
    assert [c["granted"] for c in data["consent_ledger"]] == [True]
    assert data["import_records"][0]["previous"] == {"city": "Paris"}
    assert any("job_title" in h["changes"] for h in data["history"])
    [att] = data["attachments"]
    assert "storage_key" not in att
    assert zf.read(f"files/customers/attachments/{att['id']}-{att['file_name']}") == PDF
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["subject"] == {"kind": "contact", "id": cid}
    assert "customers" in manifest["modules"] and not manifest["modules"]["customers"]["missing_files"]

    # The page lists it with a download button; the link it hands out serves the zip.
    page = owner.get(f"/{crm.slug}/privacy/contacts/{cid}").get_data(as_text=True)
    assert f'data-export="{export_id}"' in page and f"/privacy/exports/{export_id}/download" in page
    resp = owner.form(f"/{crm.slug}/privacy/exports/{export_id}/download")
    assert resp.status_code == 302
    link = urlsplit(resp.headers["Location"])
    assert link.path.startswith("/files/")
    got = owner.get(link.path)
    assert got.status_code == 200 and got.data == stored_zip(app, row["storage_key"]).fp.getvalue()
    # Audited: asked for, made, downloaded (ids only, nothing about the person).
    actions = audit_actions(app, crm)
    assert {"privacy_export", "privacy_export_ready", "privacy_export_download"} <= set(actions)


def test_an_expired_export_link_is_refused(app, crm):
    from saas.storage import _serializer

    cid = make_contact(app, crm)
    owner = signed_in(app, crm.owner_email)
    owner.form(f"/{crm.slug}/privacy/contacts/{cid}/export")
    run_jobs(app)
    export_id = last_export_id(app, crm)
    # With 100 seconds left, the link handed out lives no longer than that.
    execute(
        app,
        "update public.privacy_exports set expires_at = now() + interval '100 seconds' where id = :i",
        i=export_id,
    )
    resp = owner.form(f"/{crm.slug}/privacy/exports/{export_id}/download")
    token = urlsplit(resp.headers["Location"]).path.rsplit("/", 1)[1]
    with app.app_context():
        assert 0 < _serializer().loads(token)["e"] <= 100
    # Past its expiry: refused, and the page offers no download.
    execute(
        app,
        "update public.privacy_exports set expires_at = now() - interval '1 second' where id = :i",
        i=export_id,
    )
    resp = owner.form(f"/{crm.slug}/privacy/exports/{export_id}/download")
    assert resp.status_code == 410
    assert "expired" in resp.get_data(as_text=True)
    page = owner.get(f"/{crm.slug}/privacy").get_data(as_text=True)
    assert f"/privacy/exports/{export_id}/download" not in page
    # The daily purge deletes the expired file.
    key = export_row(app, export_id)["storage_key"]
    from workers.compliance import purge_expired_exports

    with app.app_context():
        assert purge_expired_exports() >= 1
    assert export_row(app, export_id)["status"] == "expired"
    assert not (Path(app.instance_path) / "exports" / key).exists()


def test_export_to_s3_gives_a_presigned_expiring_link(app, crm, s3):
    client, bucket = s3
    cid = make_contact(app, crm)  # its attachment goes to S3 too
    owner = signed_in(app, crm.owner_email)
    owner.form(f"/{crm.slug}/privacy/contacts/{cid}/export")
    run_jobs(app)
    export_id = last_export_id(app, crm)
    row = export_row(app, export_id)
    assert row["status"] == "done"
    head = client.head_object(Bucket=bucket, Key=f"attachments/{row['storage_key']}")
    assert head["ServerSideEncryption"] == "AES256"
    resp = owner.form(f"/{crm.slug}/privacy/exports/{export_id}/download")
    url = resp.headers["Location"]
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:  # signature v4: lifetime in seconds; v2: the moment it ends
        assert int(query["X-Amz-Expires"][0]) <= 3600
    else:
        assert int(query["Expires"][0]) <= datetime.now(UTC).timestamp() + 3601
    with urlopen(url) as got:  # noqa: S310 - moto on localhost
        zf = zipfile.ZipFile(io.BytesIO(got.read()))
    [att] = json.loads(zf.read("customers.json"))["attachments"]
    assert zf.read(f"files/customers/attachments/{att['id']}-{att['file_name']}") == PDF


# Erasure ------------------------------------------------------------------------------------------


def test_erasure_anonymises_everywhere_and_leaves_no_personal_data_in_the_audit_log(app):
    from saas.extensions import db
    from tenants.customers import search
    from tenants.customers.extra_models import Attachment
    from tenants.customers.models import Activity, Contact, Task
    from tenants.customers.privacy import ConsentEvent

    crm = Factory(app).tenant(roles=("owner",), name=unique("Erasing Co "))  # its whole log is checked
    last = unique("Quixote")
    cid = make_contact(app, crm, last=last)
    owner = signed_in(app, crm.owner_email)
    owner.form(f"/{crm.slug}/privacy/contacts/{cid}/export")
    run_jobs(app)
    old_export = export_row(app, last_export_id(app, crm))["storage_key"]
    with bound(app, crm):
        key = db.session.scalar(
            db.select(Attachment.storage_key).where(
                Attachment.record_type == "contact", Attachment.record_id == cid
            )
        )
        assert search.search(owner_viewer(crm), last).contacts
    assert last.lower() in audit_text(app, crm).lower()

    resp = owner.form(f"/{crm.slug}/privacy/contacts/{cid}/erase", {"confirm": "erase"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]

    with bound(app, crm):
        c = db.session.get(Contact, cid)
        assert c.full_name == f"Erased contact #{cid}"
        assert (c.email, c.emails, c.phones, c.birthday, c.interests, c.street, c.city, c.job_title) == (
            None, [], [], None, "", "", "", "",
        )  # fmt: skip
        assert c.lifecycle_stage == "prospect" and not c.consent_email
        assert not search.search(owner_viewer(crm), last).contacts
        assert not search.search(owner_viewer(crm), f"{last.lower()}@example.com").contacts
        notes = db.session.scalars(db.select(Activity).where(Activity.contact_id == cid)).all()
        assert notes and all(a.body == "" and a.subject == "" for a in notes)
        [task] = db.session.scalars(db.select(Task).where(Task.contact_id == cid)).all()
        assert task.title == "[erased]" and task.notes == ""
        assert (
            db.session.scalar(
                db.select(db.func.count())
                .select_from(Attachment)
                .where(Attachment.record_id == cid, Attachment.record_type == "contact")
            )
            == 0
        )  # noqa: E501
        assert [
            e.how for e in db.session.scalars(db.select(ConsentEvent).where(ConsentEvent.contact_id == cid))
        ] == [""]
    assert not (Path(app.instance_path) / "attachments" / key).exists()
    assert not (Path(app.instance_path) / "exports" / old_export).exists()  # their earlier export is gone
    dump = sql_value(
        app,
        f'select string_agg(t::text, chr(10)) from (select * from "{crm.schema}".imports) t',
    )
    assert last.lower() not in (dump or "").lower()
    assert "Paris" not in str(
        sql_value(
            app, f'select previous::text from "{crm.schema}".import_records where record_id = :c', c=cid
        )
    )  # noqa: E501
    # The audit log: the fact, not the data.
    log = audit_text(app, crm).lower()
    for secret in (last.lower(), "secret lane", "sailing", "1980-04-05", "555 0101", "passport"):
        assert secret not in log, secret
    assert "privacy_erase" in audit_actions(app, crm)
    assert (
        sql_value(
            app,
            f"select count(*) from \"{crm.schema}\".erasures where subject_kind = 'contact' and subject_id = :c",
            c=cid,
        )
        == 1
    )
    page = owner.get(f"/{crm.slug}/privacy/contacts/{cid}").get_data(as_text=True)
    assert 'id="erased"' in page


def test_erasure_needs_the_confirmation_and_changes_nothing_without_it(app, crm):
    cid = make_contact(app, crm)
    owner = signed_in(app, crm.owner_email)
    before = db_state(app, "public", crm.schema)
    for typed in ("", "yes", "someone@else.example.com"):
        resp = owner.form(f"/{crm.slug}/privacy/contacts/{cid}/erase", {"confirm": typed})
        assert resp.status_code == 422
        assert "Nothing was erased" in resp.get_data(as_text=True)
    assert db_state(app, "public", crm.schema) == before
    # The person's own email address is a confirmation too.
    email = sql_value(app, f'select email from "{crm.schema}".contacts where id = :c', c=cid)
    assert (
        owner.form(f"/{crm.slug}/privacy/contacts/{cid}/erase", {"confirm": email.upper()}).status_code == 302
    )


def test_the_registry_calls_a_module_registered_later(app, crm, dummy_module):
    from saas.compliance import registry, services

    cid = make_contact(app, crm)
    owner = signed_in(app, crm.owner_email)
    owner.form(f"/{crm.slug}/privacy/contacts/{cid}/export")
    run_jobs(app)
    zf = stored_zip(app, export_row(app, last_export_id(app, crm))["storage_key"])
    assert json.loads(zf.read("dummy.json")) == {"seen": "contact", "id": cid}
    assert zf.read("files/dummy/notes/hello.txt") == b"dummy bytes"
    owner.form(f"/{crm.slug}/privacy/contacts/{cid}/erase", {"confirm": "ERASE"})
    assert [(what, s.kind, s.id) for what, s in dummy_module] == [
        ("export", "contact", cid),
        ("erase", "contact", cid),
    ]
    summary = sql_value(
        app,
        f"select summary from \"{crm.schema}\".erasures where subject_id = :c and subject_kind = 'contact'",
        c=cid,
    )
    assert summary["dummy"] == {"dummy_rows_erased": 2} and "customers" in summary

    # A kind of person that comes with a later module (portal users) is taken once it is registered.
    registry.register_kind(
        "portal_user", lambda pid: registry.Subject("portal_user", pid, None, "Portal Pat")
    )
    try:
        with bound(app, crm, crm.people["owner"][0]):
            export_id = services.request_export(
                services.subject("portal_user", 77), crm.people["owner"][0]
            ).id
        run_jobs(app)
        zf = stored_zip(app, export_row(app, export_id)["storage_key"])
        assert json.loads(zf.read("dummy.json")) == {"seen": "portal_user", "id": 77}
        assert "customers.json" not in zf.namelist()  # customers holds nothing about portal users
    finally:
        registry._resolvers.pop("portal_user", None)


# Staff users --------------------------------------------------------------------------------------


def test_staff_user_export_and_erasure(app):
    from saas.extensions import db
    from tenants.customers import teams, timeline

    info = Factory(app).tenant(roles=("owner", "sales"), name=unique("Staff Co "))
    sales_id, sales_email, sales_mid = info.people["sales"]
    signed_in(app, sales_email)  # a sign-in: an audit entry by them
    cid = make_contact(app, info)
    from tenants.customers.people import Viewer

    with bound(app, info, sales_id):
        timeline.log_activity(
            Viewer(sales_id, "all"), "contact", cid, "call", subject="Called about the boat"
        )
        team = teams.create_team(unique("Team "))
        team_name = team.name
        teams.add_member(team.id, sales_id)
        db.session.commit()
    owner = signed_in(app, info.owner_email)
    assert owner.form(f"/{info.slug}/privacy/members/{sales_mid}/export").status_code == 302
    run_jobs(app)
    zf = stored_zip(app, export_row(app, last_export_id(app, info))["storage_key"])
    mine = json.loads(zf.read("account.json"))
    assert mine["account"]["email"] == sales_email and mine["membership"]["role"] == "sales"
    assert "signin" in [e["action"] for e in mine["audit_entries"]]
    work = json.loads(zf.read("customers.json"))
    assert [a["subject"] for a in work["timeline_entries_written"]] == ["Called about the boat"]
    assert work["teams"] == [team_name]

    # Refused: oneself, and an owner.
    owner_mid = info.people["owner"][2]
    resp = owner.form(f"/{info.slug}/privacy/members/{owner_mid}/erase", {"confirm": "ERASE"})
    assert resp.status_code == 422 and "cannot erase yourself" in resp.get_data(as_text=True)

    assert (
        owner.form(f"/{info.slug}/privacy/members/{sales_mid}/erase", {"confirm": "ERASE"}).status_code == 302
    )
    assert sql_value(app, "select count(*) from public.memberships where id = :m", m=sales_mid) == 0
    assert (
        sql_value(app, "select email from public.users where id = :u", u=sales_id)
        == f"erased-{sales_id}@erased.invalid"
    )
    assert sales_email not in audit_text(app, info)
    assert (
        sql_value(app, f'select count(*) from "{info.schema}".audit_log where user_id = :u', u=sales_id) > 0
    )
    assert (
        sql_value(app, f'select count(*) from "{info.schema}".team_members where user_id = :u', u=sales_id)
        == 0
    )
    app.test_client_class = CsrfClient
    resp = app.test_client().form("/login", {"email": sales_email, "password": "correct-horse-battery-9"})
    assert resp.status_code != 302  # that account cannot sign in any more

    # Someone who also belongs to another workspace keeps their account; only this workspace forgets them.
    other = Factory(app).tenant(roles=("owner",), name=unique("Elsewhere "))
    uid, email, mid = add_member(app, info, "support")
    with app.app_context():
        from saas.models import Membership

        db.session.add(Membership(tenant_id=other.id, user_id=uid, role="sales"))
        db.session.commit()
        db.session.remove()
    assert owner.form(f"/{info.slug}/privacy/members/{mid}/erase", {"confirm": email}).status_code == 302
    assert sql_value(app, "select email from public.users where id = :u", u=uid) == email
    assert sql_value(app, "select count(*) from public.memberships where user_id = :u", u=uid) == 1
    summary = sql_value(app, f'select summary from "{info.schema}".erasures where subject_id = :u', u=uid)
    assert summary["account"]["account"] == "kept: member of other workspaces"


# The whole tenant ---------------------------------------------------------------------------------


def test_whole_tenant_export_has_a_csv_per_table_and_a_manifest_with_row_counts(app):
    from saas.compliance.services import tenant_tables

    crm = Factory(app).tenant(roles=("owner",), name=unique("Portable Co "))

    cid = make_contact(app, crm, first="Csvia")
    owner = signed_in(app, crm.owner_email)
    assert owner.form(f"/{crm.slug}/privacy/workspace/export").status_code == 302
    run_jobs(app)
    row = export_row(app, last_export_id(app, crm))
    assert row["kind"] == "tenant" and row["status"] == "done"
    zf = stored_zip(app, row["storage_key"])
    manifest = json.loads(zf.read("manifest.json"))
    with app.app_context():
        names = {t.name for t in tenant_tables()}
    assert set(manifest["tables"]) == names and {"contacts", "audit_log", "consent_events"} <= names
    for name, entry in manifest["tables"].items():
        rows = list(csv.reader(io.StringIO(zf.read(entry["file"]).decode())))
        assert rows[0] == entry["columns"], name
        assert len(rows) - 1 == entry["rows"], name
    # Counts as of the snapshot; nothing was written to contacts since.
    assert manifest["tables"]["contacts"]["rows"] == sql_value(
        app, f'select count(*) from "{crm.schema}".contacts'
    )
    contacts = list(csv.DictReader(io.StringIO(zf.read("tables/contacts.csv").decode())))
    assert any(r["id"] == str(cid) and r["first_name"] == "Csvia" for r in contacts)
    assert manifest["attachments"]["files"] >= 1 and not manifest["attachments"]["missing"]
    assert crm.owner_email in [m["email"] for m in manifest["members"]]


def test_tenant_deletion_has_a_grace_period_can_be_cancelled_then_drops_the_schema(app):
    from workers.compliance import run_due_deletions

    info = Factory(app).tenant(roles=("owner", "admin"), name=unique("Leaving Co "))
    cid = make_contact(app, info)
    owner = signed_in(app, info.owner_email)
    admin = signed_in(app, info.email("admin"))
    url = f"/{info.slug}/privacy/workspace/delete"

    resp = owner.form(url, {"confirm": "wrong"})
    assert resp.status_code == 422
    assert admin.form(url, {"confirm": info.slug}).status_code == 403  # owners only
    assert sql_value(app, "select count(*) from public.tenant_deletions where tenant_id = :t", t=info.id) == 0

    assert owner.form(url, {"confirm": info.slug}).status_code == 302
    status, due = (
        sql_value(app, "select status from public.tenant_deletions where tenant_id = :t", t=info.id),
        sql_value(app, "select due_at from public.tenant_deletions where tenant_id = :t", t=info.id),
    )
    assert status == "pending" and timedelta(days=29) < due - datetime.now(UTC) <= timedelta(days=30)
    # Pending: still usable and exportable.
    assert 'id="deletion-pending"' in owner.get(f"/{info.slug}/privacy").get_data(as_text=True)
    assert owner.get(f"/{info.slug}/customers/contacts/{cid}").status_code == 200
    assert owner.form(f"/{info.slug}/privacy/workspace/export").status_code == 302
    run_jobs(app)
    assert "tenant_deletion_requested" in audit_actions(app, info)

    assert owner.form(f"/{info.slug}/privacy/workspace/cancel-deletion").status_code == 302
    assert (
        sql_value(app, "select status from public.tenant_deletions where tenant_id = :t", t=info.id)
        == "cancelled"
    )
    assert "tenant_deletion_cancelled" in audit_actions(app, info)

    owner.form(url, {"confirm": info.slug})
    with app.app_context():
        assert run_due_deletions() == 0  # not due yet
    schema_there = "select count(*) from pg_namespace where nspname = :s"
    assert sql_value(app, schema_there, s=info.schema) == 1
    execute(
        app,
        "update public.tenant_deletions set due_at = now() - interval '1 minute'"
        " where status = 'pending' and tenant_id = :t",
        t=info.id,
    )
    key = sql_value(app, f'select storage_key from "{info.schema}".attachments limit 1')
    with app.app_context():
        assert run_due_deletions() == 1
    run_jobs(app)
    assert sql_value(app, schema_there, s=info.schema) == 0
    assert sql_value(app, "select status from public.tenants where id = :t", t=info.id) == "deleted"
    assert (
        sql_value(
            app, "select count(*) from public.memberships where tenant_id = :t and is_active", t=info.id
        )
        == 0
    )
    assert (
        sql_value(
            app,
            "select status from public.tenant_deletions where tenant_id = :t order by id desc limit 1",
            t=info.id,
        )
        == "done"
    )
    assert not (Path(app.instance_path) / "attachments" / key).exists()
    assert owner.get(f"/{info.slug}/privacy").status_code == 404
    # Running it again does nothing.
    from workers.compliance import delete_tenant

    done_id = sql_value(app, "select max(id) from public.tenant_deletions where tenant_id = :t", t=info.id)
    with app.app_context():
        assert delete_tenant(done_id) == "skipped"


# Consent ledger -----------------------------------------------------------------------------------


def test_consent_changes_are_written_to_the_ledger_and_shown_on_the_contact(app, crm):
    from tenants.customers import services

    cid = make_contact(app, crm)
    viewer = owner_viewer(crm)
    ledger_sql = (
        f'select channel, granted, how from "{crm.schema}".consent_events where contact_id = :c order by id'
    )

    def ledger():
        from saas.extensions import db

        with app.app_context(), db.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(ledger_sql), {"c": cid})]

    first = ledger()
    assert len(first) == 1 and first[0][:2] == ("email", True)
    with bound(app, crm, viewer.user_id):
        services.update_contact(viewer, cid, {"city": "Chiang Mai"})  # no consent change: no row
        services.update_contact(viewer, cid, {"consent_sms": True, "consent_sms_how": "Phone call"})
        services.update_contact(viewer, cid, {"consent_email": False})
    assert ledger()[1:] == [("sms", True, "Phone call"), ("email", False, first[0][2])]
    page = signed_in(app, crm.owner_email).get(f"/{crm.slug}/customers/contacts/{cid}").get_data(as_text=True)
    assert 'id="consent-ledger"' in page and "Phone call" in page
    assert (
        sql_value(app, f"select count(*) from \"{crm.schema}\".audit_log where entity = 'consent_events'")
        >= 3
    )


# Faults -------------------------------------------------------------------------------------------


def test_an_export_that_crashes_is_not_done_and_the_retry_finishes_it(app, crm):
    from saas.compliance import registry

    attempts = []

    def flaky(subject):
        attempts.append(subject.id)
        if len(attempts) == 1:
            raise RuntimeError("worker lost its footing")
        return {"json": {"ok": True}}

    registry.register("flaky", flaky, lambda subject: None)
    try:
        cid = make_contact(app, crm)
        owner = signed_in(app, crm.owner_email)
        owner.form(f"/{crm.slug}/privacy/contacts/{cid}/export")
        export_id = last_export_id(app, crm)
        stored = Path(app.instance_path) / "exports" / f"compliance/{crm.id}/{export_id}.zip"
        stored.unlink(missing_ok=True)  # left by an earlier test run (ids restart in each test database)
        run_jobs(app)
        row = export_row(app, export_id)
        assert row["status"] == "queued" and "worker lost its footing" in row["error"]
        assert not stored.exists()
        assert release_retries(app) == 1
        run_jobs(app)
        row = export_row(app, export_id)
        assert row["status"] == "done" and row["attempts"] == 2 and row["error"] is None
        assert json.loads(stored_zip(app, row["storage_key"]).read("flaky.json")) == {"ok": True}
    finally:
        registry.unregister("flaky")


def test_an_export_left_running_by_a_killed_worker_is_queued_again_and_finished(app, crm):
    """A worker killed mid-export (no retry comes): the row stays "running", half a file may be stored;
    the periodic sweep queues it again and the job overwrites the file and marks it done."""
    from saas.compliance.services import request_export, subject
    from workers.compliance import requeue_stale_exports

    cid = make_contact(app, crm)
    with bound(app, crm, crm.people["owner"][0]):
        export_id = request_export(subject("contact", cid), crm.people["owner"][0]).id
    from redis import Redis

    Redis.from_url(app.config["REDIS_URL"]).flushdb()  # the job is lost with its worker
    key = f"compliance/{crm.id}/{export_id}.zip"
    partial = Path(app.instance_path) / "exports" / key
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"PK half a zip")
    execute(
        app,
        "update public.privacy_exports set status = 'running', created_at = now() - interval '2 hours',"
        " started_at = now() - interval '2 hours' where id = :i",
        i=export_id,
    )
    assert export_row(app, export_id)["status"] == "running"
    with app.app_context():
        assert requeue_stale_exports() >= 1
    run_jobs(app)
    row = export_row(app, export_id)
    assert row["status"] == "done"
    assert "customers.json" in stored_zip(app, key).namelist()


# Isolation and permissions ------------------------------------------------------------------------


def test_ids_of_another_tenant_are_404_and_change_nothing(app, crm):
    other = Factory(app).tenant(roles=("owner",), name=unique("Other Co "))
    their_contact = make_contact(app, other)
    owner = signed_in(app, other.owner_email)
    owner.form(f"/{other.slug}/privacy/contacts/{their_contact}/export")
    run_jobs(app)
    their_export = last_export_id(app, other)
    their_member = other.people["owner"][2]
    mine = signed_in(app, crm.owner_email)
    before = db_state(app, "public", crm.schema, other.schema)
    for method, url, form in (
        ("GET", f"/{crm.slug}/privacy/contacts/{their_contact + 10_000_000}", None),
        ("POST", f"/{crm.slug}/privacy/contacts/{their_contact + 10_000_000}/erase", {"confirm": "ERASE"}),
        ("GET", f"/{crm.slug}/privacy/members/{their_member}", None),
        ("POST", f"/{crm.slug}/privacy/members/{their_member}/erase", {"confirm": "ERASE"}),
        ("POST", f"/{crm.slug}/privacy/members/{their_member}/export", {}),
        ("POST", f"/{crm.slug}/privacy/exports/{their_export}/download", {}),
        ("POST", f"/{other.slug}/privacy/exports/{their_export}/download", {}),
        ("POST", f"/{other.slug}/privacy/contacts/{their_contact}/erase", {"confirm": "ERASE"}),
    ):
        resp = mine.get(url) if method == "GET" else mine.form(url, form)
        assert resp.status_code == 404, (method, url, resp.status_code)
    assert db_state(app, "public", crm.schema, other.schema) == before


def test_only_owners_and_admins_reach_the_page(app, crm):
    cid = make_contact(app, crm)
    sales = signed_in(app, crm.email("sales"))
    before = db_state(app, "public", crm.schema)
    assert sales.get(f"/{crm.slug}/privacy").status_code == 403
    assert sales.get(f"/{crm.slug}/privacy/contacts/{cid}").status_code == 403
    assert sales.form(f"/{crm.slug}/privacy/contacts/{cid}/erase", {"confirm": "ERASE"}).status_code == 403
    assert sales.form(f"/{crm.slug}/privacy/workspace/export").status_code == 403
    assert db_state(app, "public", crm.schema) == before
    assert f"/{crm.slug}/privacy" not in sales.get(f"/{crm.slug}/").get_data(as_text=True)
    admin = signed_in(app, crm.email("admin"))
    page = admin.get(f"/{crm.slug}/privacy?q=Zelda")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"/privacy/contacts/{cid}" in html
    assert "Only an owner can delete the workspace." in html
    assert f'href="/{crm.slug}/privacy"' in admin.get(f"/{crm.slug}/").get_data(as_text=True)


# Retention ----------------------------------------------------------------------------------------


def test_retention_erases_untouched_contacts_and_old_audit_entries(app):
    from workers.compliance import fan_out_retention

    info = Factory(app).tenant(roles=("owner",), name=unique("Retain Co "))
    old, busy, fresh = (make_contact(app, info, first=n) for n in ("Old", "Busy", "Fresh"))
    owner = signed_in(app, info.owner_email)
    resp = owner.form(f"/{info.slug}/privacy/retention", {"contact_months": "3", "audit_days": "90"})
    assert resp.status_code == 422 and "from 6 to 240" in resp.get_data(as_text=True)
    assert (
        owner.form(f"/{info.slug}/privacy/retention", {"contact_months": "6", "audit_days": "90"}).status_code
        == 302
    )
    s = info.schema
    for sql in (
        f"update \"{s}\".contacts set created_at = now() - interval '400 days', updated_at = now() - interval '200 days'",
        f"update \"{s}\".activities set occurred_at = now() - interval '300 days', created_at = now() - interval '300 days'",
        f"update \"{s}\".tasks set done_at = now() - interval '300 days', updated_at = now() - interval '300 days'",
        f"update \"{s}\".activities set occurred_at = now() - interval '3 days' where contact_id = {busy} and kind = 'note'",
        f"update \"{s}\".contacts set updated_at = now() where id = {fresh}",
        f"insert into \"{s}\".audit_log (at, action, entity, changes, summary) values (now() - interval '100 days', 'update', 'contacts', '{{}}', 'ancient')",
    ):  # fmt: skip
        execute(app, sql)
    with app.app_context():
        assert fan_out_retention() >= 1
    run_jobs(app)
    names = {
        cid: sql_value(app, f'select full_name from "{s}".contacts where id = :c', c=cid)
        for cid in (old, busy, fresh)
    }
    assert names[old] == f"Erased contact #{old}"
    assert names[busy].startswith("Busy") and names[fresh].startswith("Fresh")
    assert sql_value(app, f"select count(*) from \"{s}\".audit_log where summary = 'ancient'") == 0
    assert sql_value(app, f"select count(*) from \"{s}\".audit_log where action = 'retention_purge'") == 1
    assert sql_value(app, f'select reason from "{s}".erasures where subject_id = :c', c=old) == "retention"
