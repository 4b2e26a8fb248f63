"""Emails written on a 360 page: queued with their timeline entry, sent by the real email job to a real
SMTP server, the entry following the mail (queued -> sent, retrying -> failed), never sent or recorded
twice; refusals (no address, forged or hidden ids, no permission) write nothing."""

from __future__ import annotations

import re

import pytest

from tests.factories import db_state, offset_ids, release_retries, run_jobs, sql_value, unique
from tests.saas.conftest import smtp  # noqa: F401 - the real SMTP server fixture
from tests.tenants.customers.conftest import in_tenant, viewer_of


def _htmx(client) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": client.csrf_token()}


def _address() -> str:
    return f"{unique('cust')}@example.com"


def _company(app, crm, owner_role: str = "sales") -> int:
    from tenants.customers import services

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        return services.create_company(
            owner, {"name": unique("Mail Co "), "owner_id": crm.people[owner_role][0]}
        ).id


def _contact(app, crm, email: str | None, company_id: int | None = None, owner_role: str = "sales") -> int:
    from tenants.customers import services

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        data = {"first_name": unique("Mai "), "last_name": "Lee", "owner_id": crm.people[owner_role][0]}
        if email:
            data["email"] = email
        if company_id:
            data["company_id"] = company_id
        return services.create_contact(owner, data).id


def _emails_of(app, crm, column: str, record_id: int) -> list[dict]:
    """The email entries of a record's timeline, oldest first, with their outbox rows."""
    from sqlalchemy import text

    from saas.extensions import db
    from saas.tenancy import qualified

    with in_tenant(app, crm):
        rows = db.session.execute(
            text(
                f"select a.*, o.status as outbox_status, o.to_addr, o.attempts, o.message_id, o.tenant_id "
                f"from {qualified('activities')} a left join public.email_outbox o on o.id = a.outbox_id "
                f"where a.kind = 'email' and a.{column} = :id order by a.id"
            ),
            {"id": record_id},
        ).mappings()
        return [dict(r) for r in rows]


def _send(client, crm, kind: str, record_id: int, htmx: bool = False, **form):
    url = f"/{crm.slug}/customers/{kind}/{record_id}/emails"
    return client.form(url, form, headers=_htmx(client) if htmx else {})


def _page(client, crm, kind: str, record_id: int) -> str:
    resp = client.get(f"/{crm.slug}/customers/{kind}/{record_id}")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_email_from_a_contact_page_is_sent_once_and_shows_as_sent(app, crm, login, smtp):  # noqa: F811
    to = _address()
    company_id = _company(app, crm)
    contact_id = _contact(app, crm, to, company_id)
    client = login("sales")
    page = _page(client, crm, "contacts", contact_id)
    assert 'data-testid="email-form"' in page and f"&lt;{to}&gt;" in page

    resp = _send(client, crm, "contacts", contact_id, subject="Your quote", body="Hello Mai,\n\nHere it is.")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/contacts/{contact_id}#timeline")
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "queued" and entry["outbox_status"] == "queued"
    assert entry["email_to"] == to == entry["to_addr"] and entry["tenant_id"] == crm.id
    assert entry["company_id"] == company_id and entry["user_id"] == crm.people["sales"][0]
    assert entry["body"] == "<p>Hello Mai,</p><p>Here it is.</p>"
    page = _page(client, crm, "contacts", contact_id)
    assert "Email to " in page and "Your quote" in page and ">Queued</span>" in page

    assert run_jobs(app) == 1
    [msg] = smtp.to(to)
    assert msg["Subject"] == "Your quote"
    assert msg["From"].addresses[0].display_name == "Sales Person"
    assert msg["From"].addresses[0].addr_spec == "no-reply@localhost"  # the app's sender address
    assert msg["Reply-To"] == crm.email("sales")
    assert msg["Message-ID"] == entry["message_id"]
    assert "Here it is." in msg.get_body(preferencelist=("plain",)).get_content()
    assert "<p>Here it is.</p>" in msg.get_body(preferencelist=("html",)).get_content()

    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "sent" == entry["outbox_status"] and entry["meta"]["sent_at"]
    for kind, record_id in (("contacts", contact_id), ("companies", company_id)):
        assert ">Sent</span>" in _page(client, crm, kind, record_id)  # on the company's timeline too
    # The job's change of the entry is in the tenant's audit log, by the job.
    assert sql_value(
        app,
        f"select count(*) from \"{crm.schema}\".audit_log where entity = 'activities' "
        "and entity_id = :id and action = 'update' and user_email = 'system:job'",
        id=str(entry["id"]),
    )
    # Nothing left to do: no second mail, no second entry.
    assert run_jobs(app) == 0 and len(smtp.to(to)) == 1
    assert len(_emails_of(app, crm, "contact_id", contact_id)) == 1


def test_email_from_a_company_to_a_contact_or_a_typed_address(app, crm, login, smtp):  # noqa: F811
    company_id = _company(app, crm)
    with_mail, typed = _address(), _address()
    contact_id = _contact(app, crm, with_mail, company_id)
    without_id = _contact(app, crm, None, company_id)
    elsewhere_id = _contact(app, crm, _address(), _company(app, crm))
    client = login("sales")
    page = _page(client, crm, "companies", company_id)
    offered = re.search(r'<select[^>]*name="to_contact".*?</select>', page, re.S).group(0)
    assert f'value="{contact_id}"' in offered and with_mail in offered
    assert f'value="{without_id}"' not in offered and f'value="{elsewhere_id}"' not in offered

    resp = _send(
        client, crm, "companies", company_id, True, to_contact=str(contact_id), subject="Hi", body="One"
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and f"Email to {with_mail} queued" in html and 'id="timeline"' in html
    resp = _send(
        client, crm, "companies", company_id, True, to_address=typed.upper(), subject="Hi", body="Two"
    )
    assert resp.status_code == 200
    first, second = _emails_of(app, crm, "company_id", company_id)
    assert (first["contact_id"], first["email_to"]) == (contact_id, with_mail)
    assert (second["contact_id"], second["email_to"]) == (None, typed)  # typed: stored lower case
    # The first one is on the contact's timeline as well.
    assert [e["id"] for e in _emails_of(app, crm, "contact_id", contact_id)] == [first["id"]]

    refusals = [
        ({"subject": "Hi", "body": "x"}, "Choose a contact or type an email address."),
        ({"to_contact": str(contact_id), "to_address": typed, "subject": "Hi", "body": "x"}, "not both"),
        ({"to_address": "not an address", "subject": "Hi", "body": "x"}, "is not an email address"),
        ({"to_contact": str(without_id), "subject": "Hi", "body": "x"}, "has no email address"),
        ({"to_contact": str(elsewhere_id), "subject": "Hi", "body": "x"}, "this company&#39;s contacts"),
        ({"to_contact": str(contact_id), "subject": "", "body": "x"}, "Write a subject."),
        ({"to_contact": str(contact_id), "subject": "Hi", "body": "  "}, "Write the email."),
    ]
    before = db_state(app, "public", crm.schema)
    for form, message in refusals:
        resp = _send(client, crm, "companies", company_id, True, **form)
        assert resp.status_code == 422 and message in resp.get_data(as_text=True), form
        # The full page says the same, with the form open and what was typed kept.
        resp = _send(client, crm, "companies", company_id, **form)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and message in html and 'id="email-form" open' in html, form
    assert db_state(app, "public", crm.schema) == before

    assert run_jobs(app) == 2
    assert len(smtp.to(with_mail)) == 1 and len(smtp.to(typed)) == 1


def test_a_contact_without_an_address_is_refused(app, crm, login):
    contact_id = _contact(app, crm, None)
    client = login("sales")
    page = _page(client, crm, "contacts", contact_id)
    assert 'data-testid="no-email-address"' in page and 'data-testid="email-form"' not in page
    before = db_state(app, "public", crm.schema)
    resp = _send(client, crm, "contacts", contact_id, True, subject="Hi", body="Hello")
    assert resp.status_code == 422 and "has no email address" in resp.get_data(as_text=True)
    assert db_state(app, "public", crm.schema) == before
    assert run_jobs(app) == 0


def test_smtp_down_shows_retrying_then_sent_once(app, crm, login, smtp):  # noqa: F811
    from workers.email import send_email
    from workers.queues import enqueue

    to = _address()
    contact_id = _contact(app, crm, to)
    client = login("sales")
    smtp.stop()
    assert _send(client, crm, "contacts", contact_id, subject="Down", body="Try").status_code == 302
    assert run_jobs(app) == 1
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "retrying" and "ConnectionRefusedError" in entry["meta"]["error"]
    page = _page(client, crm, "contacts", contact_id)
    assert "Not sent yet: trying again" in page and "ConnectionRefusedError" in page

    smtp.start()
    assert release_retries(app) == 1 and run_jobs(app) == 1
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "sent" and "error" not in entry["meta"] and entry["attempts"] == 2
    page = _page(client, crm, "contacts", contact_id)
    assert ">Sent</span>" in page and "ConnectionRefusedError" not in page
    # The same job again (a retry after a lost acknowledgement): no second mail, nothing recorded twice.
    with app.app_context():
        enqueue(send_email, entry["outbox_id"], queue_name="high")
    assert run_jobs(app) == 1
    assert len(smtp.to(to)) == 1
    [again] = _emails_of(app, crm, "contact_id", contact_id)
    assert again == entry


def test_failed_after_the_last_try_then_sent_again(app, crm, login, smtp):  # noqa: F811
    to = _address()
    contact_id = _contact(app, crm, to)
    client = login("sales")
    smtp.stop()
    _send(client, crm, "contacts", contact_id, subject="Never", body="Lost")
    assert run_jobs(app) == 1
    tries = 1
    while release_retries(app):
        tries += run_jobs(app)
    assert tries == 5  # the first try and RQ's four retries
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "failed" == entry["outbox_status"] and entry["attempts"] == 5
    page = _page(client, crm, "contacts", contact_id)
    assert ">Not sent</span>" in page and "ConnectionRefusedError" in page and "Send again" in page

    smtp.start()
    url = f"/{crm.slug}/customers/activities/{entry['id']}/send-again"
    assert login("read_only").form(url).status_code == 403
    assert run_jobs(app) == 0
    resp = client.form(url)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/contacts/{contact_id}#timeline")
    assert _emails_of(app, crm, "contact_id", contact_id)[0]["email_status"] == "queued"
    assert run_jobs(app) == 1 and len(smtp.to(to)) == 1
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "sent" and entry["attempts"] == 6
    # Only a failed email can be sent again.
    client.form(url)
    assert "Only an email that could not be sent" in _page(client, crm, "contacts", contact_id)
    assert run_jobs(app) == 0 and len(smtp.to(to)) == 1


def test_script_in_subject_and_body_is_text_everywhere(app, crm, login, smtp):  # noqa: F811
    to = _address()
    contact_id = _contact(app, crm, to)
    client = login("sales")
    subject = '<script>alert("s")</script> Offer\r\nBcc: victim@example.com'
    body = '<p>Dear <b>Mai</b></p><script>alert("b")</script><img src=x onerror="alert(1)">'
    assert _send(client, crm, "contacts", contact_id, subject=subject, body=body).status_code == 302
    page = _page(client, crm, "contacts", contact_id)
    assert '<script>alert("s")' not in page and '<script>alert("b")' not in page and "onerror" not in page
    assert "&lt;script&gt;alert(&#34;s&#34;)&lt;/script&gt; Offer Bcc: victim@example.com" in page
    assert "<p>Dear <b>Mai</b></p>" in page
    assert run_jobs(app) == 1
    [msg] = smtp.to(to)
    assert msg["Subject"] == '<script>alert("s")</script> Offer Bcc: victim@example.com'  # one line
    assert msg["Bcc"] is None and smtp.to("victim@example.com") == []
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "<p>Dear <b>Mai</b></p>" in html and "<script" not in html and "onerror" not in html
    assert "&lt;script&gt;alert(&#34;s&#34;)" in html  # the subject in the HTML part's title
    assert "alert" not in msg.get_body(preferencelist=("plain",)).get_content()


def test_forged_hidden_and_refused_requests_are_404_or_403_and_write_nothing(app, crm, other, login):
    from saas.permissions import BUILTIN_ROLES

    offset_ids(app, other)  # their ids are never also ids here: a forged id names nothing of ours
    company_id = _company(app, crm)
    theirs_company = _company(app, other)
    theirs = _contact(app, other, _address(), theirs_company)
    hidden = _contact(app, crm, _address(), company_id, owner_role="support")  # sales sees its own only
    mine = _contact(app, crm, _address(), company_id)
    with in_tenant(app, other):
        from tenants.customers import emails

        theirs_activity = emails.send_email(
            viewer_of(other, "owner"), "contact", theirs, "Theirs", "Not yours"
        ).id
    client = login("sales")
    roles = [r for r, d in BUILTIN_ROLES.items() if not d.allows("customers", "edit")]
    clients = {role: login(role) for role in roles}  # signed in before the snapshot (sign-ins write)
    form = {"subject": "Forged", "body": "x"}
    before = db_state(app, "public", crm.schema, other.schema)
    # A contact and a company of another workspace, named in this one.
    assert _send(client, crm, "contacts", theirs, **form).status_code == 404
    assert _send(client, crm, "companies", theirs_company, to_address=_address(), **form).status_code == 404
    # Their contact as the recipient on one of our companies; a contact sales may not see.
    assert _send(client, crm, "companies", company_id, to_contact=str(theirs), **form).status_code == 404
    assert _send(client, crm, "companies", company_id, to_contact=str(hidden), **form).status_code == 404
    assert _send(client, crm, "companies", company_id, to_contact="x1", **form).status_code == 404
    assert _send(client, crm, "contacts", hidden, **form).status_code == 404
    # Their email entry, sent again from here.
    resp = client.form(f"/{crm.slug}/customers/activities/{theirs_activity}/send-again")
    assert resp.status_code == 404
    # A role without "edit" on customers.
    assert roles
    for role in roles:
        resp = _send(clients[role], crm, "contacts", mine, **form)
        assert resp.status_code == 403, role
    assert db_state(app, "public", crm.schema, other.schema) == before


def test_other_tenant_mail_goes_out_untouched_by_the_timeline_hooks(app, crm, smtp):  # noqa: F811
    """A tenant's invitation or reminder (not a CRM email) is sent as before: no entry, no Reply-To."""
    from types import SimpleNamespace

    from saas.extensions import db
    from saas.mail import queue_email

    to = _address()
    with app.test_request_context():
        queue_email(
            to, "Invited", "verify", tenant_id=crm.id, user=SimpleNamespace(name="Pat"), link="http://x/"
        )
        db.session.commit()
        db.session.remove()
    assert run_jobs(app) == 1
    [msg] = smtp.to(to)
    assert msg["From"] == app.config["MAIL_FROM"] and msg["Reply-To"] is None


@pytest.mark.parametrize("role", ["owner", "support"])
def test_roles_with_edit_see_the_form(crm, login, app, role):
    contact_id = _contact(app, crm, _address())
    assert 'data-testid="email-form"' in _page(login(role), crm, "contacts", contact_id)
    assert 'data-testid="email-form"' not in _page(login("read_only"), crm, "contacts", contact_id)


def test_deleting_an_unsent_email_entry_stops_the_email(app, crm, login, smtp):  # noqa: F811
    to = _address()
    contact_id = _contact(app, crm, to)
    client = login("sales")
    assert _send(client, crm, "contacts", contact_id, subject="Wrong draft", body="Oops").status_code == 302
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    resp = client.form(f"/{crm.slug}/customers/activities/{entry['id']}/delete", {})
    assert resp.status_code == 302
    assert _emails_of(app, crm, "contact_id", contact_id) == []
    assert sql_value(app, "select status from public.email_outbox where id = :i", i=entry["outbox_id"]) == (
        "cancelled"
    )
    run_jobs(app)  # the job queued with the email runs, and skips it
    assert smtp.to(to) == []


def test_deleting_a_sent_email_entry_leaves_the_sent_mail_as_it_is(app, crm, login, smtp):  # noqa: F811
    to = _address()
    contact_id = _contact(app, crm, to)
    client = login("sales")
    _send(client, crm, "contacts", contact_id, subject="Sent already", body="Hi")
    run_jobs(app)
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert client.form(f"/{crm.slug}/customers/activities/{entry['id']}/delete", {}).status_code == 302
    assert (
        sql_value(app, "select status from public.email_outbox where id = :i", i=entry["outbox_id"]) == "sent"
    )
    assert len(smtp.to(to)) == 1


def test_the_api_shows_an_email_entry_with_its_address_and_status(app, crm, login, smtp):  # noqa: F811
    import json

    from tests.tenants.api.conftest import Api, make_token

    to = _address()
    contact_id = _contact(app, crm, to)
    _send(login("sales"), crm, "contacts", contact_id, subject="Via API", body="Hi")
    api = Api(app.test_client(), crm.slug, make_token(app, crm, "sales"))
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    body = json.loads(api.get(f"activities/{entry['id']}").get_data())
    assert body["kind"] == "email" and body["email_to"] == to and body["email_status"] == "queued"
    run_jobs(app)
    body = json.loads(api.get(f"activities/{entry['id']}").get_data())
    assert body["email_status"] == "sent"


def test_bulk_delete_stops_unsent_email_and_undo_brings_back_it_and_the_consent_ledger(
    app,
    crm,
    login,
    smtp,  # noqa: F811
):
    from sqlalchemy import text

    from saas.extensions import db
    from saas.tenancy import qualified
    from tenants.customers import services

    to = _address()
    contact_id = _contact(app, crm, to)
    with in_tenant(app, crm):  # a ledger with history: given, then withdrawn
        owner = viewer_of(crm, "owner")
        services.update_contact(
            owner,
            contact_id,
            {
                "consent_email": True,
                "consent_email_how": "Web form",
                "consent_sms": True,
                "consent_sms_how": "Call",
            },  # fmt: skip
        )
        services.update_contact(owner, contact_id, {"consent_sms": False})

    def ledger() -> list[tuple]:
        with in_tenant(app, crm):
            return [
                tuple(r)
                for r in db.session.execute(
                    text(
                        f"select id, channel, granted, how, at, user_id, created_at from {qualified('consent_events')}"
                        " where contact_id = :c order by id"
                    ),
                    {"c": contact_id},
                )
            ]

    before = ledger()
    assert [(r[1], r[2]) for r in before] == [("email", True), ("sms", True), ("sms", False)]
    client = login("owner")
    _send(client, crm, "contacts", contact_id, subject="Before the delete", body="Hi")
    [entry] = _emails_of(app, crm, "contact_id", contact_id)

    client.form(f"/{crm.slug}/customers/contacts/bulk", {"action": "delete", "ids": [str(contact_id)]})
    assert ledger() == [] and _emails_of(app, crm, "contact_id", contact_id) == []
    run_jobs(app)
    assert smtp.to(to) == []  # stopped with the record

    with in_tenant(app, crm):
        from tenants.customers import bulk

        batch = bulk.last_batch(viewer_of(crm, "owner"), "contact").id
    assert client.form(f"/{crm.slug}/customers/contacts/bulk/undo", {"batch_id": batch}).status_code == 302
    assert ledger() == before  # the same rows: no "new" consent recorded by the undo
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "failed" and entry["outbox_status"] == "cancelled"
    resp = client.form(f"/{crm.slug}/customers/activities/{entry['id']}/send-again", {})
    assert resp.status_code in (200, 302)
    run_jobs(app)
    assert len(smtp.to(to)) == 1
    [entry] = _emails_of(app, crm, "contact_id", contact_id)
    assert entry["email_status"] == "sent"
