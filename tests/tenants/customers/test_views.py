"""The pages: forms with errors next to fields, htmx inline logging, permissions, escaping, panels, isolation."""

from __future__ import annotations

import re

import pytest

from tests.factories import db_state, field_errors
from tests.tenants.customers.conftest import in_tenant, viewer_of

SCRIPT = '<script>alert("x")</script>'


def _id_from(location: str, kind: str) -> int:
    return int(re.search(rf"/customers/{kind}/(\d+)$", location).group(1))


def _htmx(client) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": client.csrf_token()}


def test_create_company_and_contact_through_the_forms(app, crm, login):
    client = login("sales")
    base = f"/{crm.slug}/customers"
    resp = client.form(
        f"{base}/companies/new",
        {"name": "Form Co", "website": "form.example", "phones": "+66 2 123 4567", "tags": "b2b, thai",
         "lifecycle_stage": "prospect", "owner_id": str(crm.people["sales"][0])},
    )  # fmt: skip
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    company_id = _id_from(resp.headers["Location"], "companies")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Form Co" in page and "https://form.example" in page and "Company Form Co added." in page
    # A contact, added from the company's page (the company box is filled in for them).
    new_form = client.get(f"{base}/contacts/new?company_id={company_id}").get_data(as_text=True)
    assert 'value="Form Co"' in new_form
    resp = client.form(
        f"{base}/contacts/new",
        {"first_name": "Somchai", "last_name": "Jaidee", "company": "Form Co", "company_id": str(company_id),
         "email": "somchai@form.example", "owner_id": str(crm.people["sales"][0]), "lifecycle_stage": "lead",
         "consent_email": "y", "consent_email_how": "Signed up at a trade show"},
    )  # fmt: skip
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    contact_page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Somchai Jaidee" in contact_page and "Signed up at a trade show" in contact_page
    company_page = client.get(f"{base}/companies/{company_id}").get_data(as_text=True)
    assert "Somchai Jaidee" in company_page  # the contacts panel
    # Edit keeps what the form does not show, and moves the stage (history).
    resp = client.form(f"{base}/companies/{company_id}/edit", {"name": "Form Co Ltd", "lifecycle_stage": "customer",
                                                               "owner_id": str(crm.people["sales"][0])})  # fmt: skip
    assert resp.status_code == 302
    page = client.get(f"{base}/companies/{company_id}").get_data(as_text=True)
    assert "Form Co Ltd" in page and "Stage: Prospect → Customer" in page
    # Who did it is in the audit log, field by field.
    from sqlalchemy import select

    from saas.extensions import db
    from tenants.admin.models import AuditEvent

    with in_tenant(app, crm):
        update = db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.entity == "companies",
                AuditEvent.entity_id == str(company_id),
                AuditEvent.action == "update",
            )
        )
        assert update.user_email == crm.email("sales")
        assert update.changes["name"] == ["Form Co", "Form Co Ltd"]
        assert update.changes["lifecycle_stage"] == ["prospect", "customer"]


def test_errors_are_shown_next_to_their_fields(crm, login, app):
    client = login("owner")
    base = f"/{crm.slug}/customers"
    before = db_state(app, crm.schema)
    resp = client.form(f"{base}/companies/new", {"name": "", "website": "javascript:alert(1)"})
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "name") == ["This field is required."]
    resp = client.form(f"{base}/companies/new", {"name": "Ok", "website": "javascript:alert(1)"})
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "website") == [
        "Enter a web address such as example.com."
    ]
    resp = client.form(
        f"{base}/contacts/new", {"first_name": "Al", "company": "Nowhere Inc", "email": "bad@"}
    )
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "email") == ["bad@ is not an email address."]
    resp = client.form(f"{base}/contacts/new", {"first_name": "Al", "company": "Nowhere Inc"})
    assert field_errors(resp.get_data(as_text=True), "company") == [
        "No company is called Nowhere Inc. Add it first."
    ]
    resp = client.form(f"{base}/contacts/new", {"first_name": "", "last_name": ""})
    assert field_errors(resp.get_data(as_text=True), "first_name") == ["Enter a first or a last name."]
    assert db_state(app, crm.schema) == before


def test_custom_fields_on_forms_and_lists(crm, login):
    client = login("owner")
    base = f"/{crm.slug}/customers"
    resp = client.form(
        f"{base}/fields/new", {"record_type": "company", "label": "Employees", "field_type": "number"}
    )
    assert resp.status_code == 302
    resp = client.form(
        f"{base}/fields/new",
        {"record_type": "company", "label": "Tier", "field_type": "select", "options": "Gold\nSilver"},
    )
    assert resp.status_code == 302
    bad = client.form(f"{base}/fields/new", {"record_type": "company", "label": "Tier", "field_type": "text"})
    assert bad.status_code == 422
    assert field_errors(bad.get_data(as_text=True), "key") == ["Another field already uses the key tier."]
    resp = client.form(
        f"{base}/companies/new", {"name": "Custom Co", "cf_employees": "many", "cf_tier": "Gold"}
    )
    assert resp.status_code == 422
    assert field_errors(resp.get_data(as_text=True), "cf_employees") == ["Employees: enter a number."]
    resp = client.form(
        f"{base}/companies/new", {"name": "Custom Co", "cf_employees": "1,200", "cf_tier": "Gold"}
    )
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "1,200" in page and "Gold" in page
    listing = client.get(f"{base}/companies?cf_employees__gte=1000&cf_tier=Gold").get_data(as_text=True)
    assert "Custom Co" in listing and "Employees at least 1000" in listing
    assert "Custom Co" not in client.get(f"{base}/companies?cf_tier=Silver").get_data(as_text=True)


def test_log_a_note_inline_with_htmx_and_script_is_text(crm, login, app):
    client = login("support")  # may edit customers, sees all records
    with in_tenant(app, crm):
        from tenants.customers import services

        company = services.create_company(
            viewer_of(crm, "owner"), {"name": f"Evil {SCRIPT} Corp", "tags": [SCRIPT]}
        )
        company_id = company.id
    base = f"/{crm.slug}/customers/companies/{company_id}"
    resp = client.post(
        f"{base}/activities",
        data={
            "kind": "note",
            "subject": SCRIPT,
            "body": f"<p>Fine <b>bold</b>{SCRIPT}<img src=x onerror=alert(1)></p>",
        },
        headers=_htmx(client),
    )
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<html" not in html and 'id="timeline"' in html and "Note logged." in html
    assert "<p>Fine <b>bold</b></p>" in html and "onerror" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # the subject, shown as text
    # An invalid entry comes back as the same block with the error, status 422 (htmx swaps it).
    resp = client.post(f"{base}/activities", data={"kind": "note", "body": " "}, headers=_htmx(client))
    assert resp.status_code == 422 and "Write the note." in resp.get_data(as_text=True)
    # Without htmx: a redirect to the page, where every text field shows script as text.
    resp = client.form(
        f"{base}/activities", {"kind": "call", "subject": "Called", "duration_min": "5", "direction": "out"}
    )
    assert resp.status_code == 302
    for url in (base, f"/{crm.slug}/customers/companies?name=Evil"):
        page = client.get(url).get_data(as_text=True)
        assert SCRIPT not in page and "&lt;script&gt;" in page


def test_tasks_inline_and_my_tasks(crm, login, app):
    client = login("sales")
    sales_id = crm.people["sales"][0]
    with in_tenant(app, crm):
        from tenants.customers import services

        company = services.create_company(viewer_of(crm, "sales"), {"name": "Tasky Co"})
        company_id = company.id
    base = f"/{crm.slug}/customers"
    resp = client.post(
        f"{base}/companies/{company_id}/tasks",
        data={"title": "Send the brochure", "due_at": "2030-01-02T09:30"},
        headers=_htmx(client),
    )
    assert resp.status_code == 200 and "Send the brochure" in resp.get_data(as_text=True)
    bad = client.post(f"{base}/companies/{company_id}/tasks", data={"title": ""}, headers=_htmx(client))
    assert bad.status_code == 422 and "This field is required." in bad.get_data(as_text=True)
    mine = client.get(f"{base}/tasks").get_data(as_text=True)
    assert "Send the brochure" in mine and "Tasky Co" in mine
    task_id = int(re.search(r'id="task-(\d+)"', mine).group(1))
    done = client.post(f"{base}/tasks/{task_id}/done", headers=_htmx(client))
    assert done.status_code == 200 and "bi-check-circle-fill" in done.get_data(as_text=True)
    assert "Send the brochure" not in client.get(f"{base}/tasks").get_data(as_text=True)
    assert "Send the brochure" in client.get(f"{base}/tasks?status=done").get_data(as_text=True)
    resp = client.form(f"{base}/tasks/{task_id}/edit", {"title": "Send the new brochure", "assignee_id": str(sales_id),
                                                        "due_at": "2030-01-03T10:00"})  # fmt: skip
    assert resp.status_code == 302
    page = client.get(f"{base}/companies/{company_id}").get_data(as_text=True)
    assert "Send the new brochure" in page


@pytest.mark.parametrize(
    ("role", "method", "path", "data"),
    [
        ("read_only", "GET", "/companies/new", None),
        ("read_only", "POST", "/companies/new", {"name": "Nope"}),
        ("read_only", "POST", "/contacts/new", {"first_name": "Nope"}),
        ("marketing", "POST", "/companies/{company_id}/activities", {"kind": "note", "body": "x"}),
        ("read_only", "POST", "/companies/{company_id}/stage", {"stage": "churned"}),
        ("sales", "POST", "/companies/{company_id}/delete", {}),
        ("support", "POST", "/companies/new", {"name": "Nope"}),
        ("sales", "GET", "/fields", None),
        ("manager", "POST", "/fields/new", {"record_type": "contact", "label": "Nope", "field_type": "text"}),
        ("sales", "POST", "/teams/new", {"name": "Nope"}),
    ],
)
def test_roles_without_the_permission_get_403_and_write_nothing(app, crm, login, role, method, path, data):
    with in_tenant(app, crm):
        from tenants.customers import services

        company_id = services.create_company(
            viewer_of(crm, "owner"), {"name": "Perm Co", "owner_id": crm.people["sales"][0]}
        ).id
    url = f"/{crm.slug}/customers" + path.format(company_id=company_id)
    client = login(role)
    before = db_state(app, crm.schema)
    resp = client.get(url) if method == "GET" else client.form(url, data)
    assert resp.status_code == 403
    assert "Your role does not allow this" in resp.get_data(as_text=True)
    assert db_state(app, crm.schema) == before


def test_read_only_sees_but_gets_no_buttons(crm, login, app):
    with in_tenant(app, crm):
        from tenants.customers import services

        company_id = services.create_company(viewer_of(crm, "owner"), {"name": "Look Co"}).id
    page = login("read_only").get(f"/{crm.slug}/customers/companies/{company_id}").get_data(as_text=True)
    assert "Look Co" in page
    assert "/activities" not in page and "/delete" not in page and "New company" not in page


# The 360 panel registry ----------------------------------------------------------------


def _load_deals(record, viewer):
    return {"deal_names": [f"Deal for {record.name}", "<b>Big</b> deal"], "who": viewer.user_id}


def test_a_module_adds_its_panel_without_editing_this_one(app, crm, login):
    from jinja2 import ChoiceLoader, DictLoader

    from tenants.customers.panels import register_panel, unregister_panel

    loader = app.jinja_loader
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"test_sales/_deals.html": "<ul id='deals'>{% for d in deal_names %}<li>{{ d }}</li>{% endfor %}</ul>"
                     "<span id='deal-viewer'>{{ who }}</span><span id='rt'>{{ record_type }}</span>"}),
         app.jinja_env.loader]
    )  # fmt: skip
    with in_tenant(app, crm):
        from tenants.customers import services

        company_id = services.create_company(viewer_of(crm, "owner"), {"name": "Panel Co"}).id
    url = f"/{crm.slug}/customers/companies/{company_id}"
    before = login("owner").get(url).get_data(as_text=True)
    assert 'data-panel="deals" data-planned="1"' in before  # the marked empty place
    register_panel(
        "company",
        "deals",
        "Deals",
        "test_sales/_deals.html",
        _load_deals,
        order=5,
        permission=("sales", "view"),
    )
    try:
        page = login("owner").get(url).get_data(as_text=True)
        assert "<li>Deal for Panel Co</li>" in page and "<li>&lt;b&gt;Big&lt;/b&gt; deal</li>" in page
        assert (
            f"<span id='deal-viewer'>{crm.people['owner'][0]}</span>" in page
            and "<span id='rt'>company</span>" in page
        )
        assert 'data-panel="deals" data-planned="1"' not in page
        assert page.index('data-panel="deals"') < page.index('data-panel="contacts"')  # order=5 comes first
        assert 'data-panel="contracts" data-planned="1"' in page  # the others still wait
        # Support may not see sales: neither the panel nor its empty place.
        support_page = login("support").get(url).get_data(as_text=True)
        assert 'data-panel="deals"' not in support_page and "Deal for Panel Co" not in support_page

        def broken(record, viewer):
            raise RuntimeError("the deals service is down")

        register_panel("company", "deals", "Deals", "test_sales/_deals.html", broken)
        resp = login("owner").get(url)
        assert resp.status_code == 200 and "This panel could not be loaded" in resp.get_data(as_text=True)
        with pytest.raises(ValueError):
            register_panel("deal", "x", "X", "x.html", broken)
    finally:
        unregister_panel("company", "deals")
        app.jinja_env.loader = loader
    assert 'data-panel="deals" data-planned="1"' in login("owner").get(url).get_data(as_text=True)


# Isolation --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign(app, crm, other):
    """Records of the other workspace, with ids this workspace does not have."""
    from sqlalchemy import func, select

    from saas.extensions import db
    from tenants.customers import services, tasks, timeline
    from tenants.customers.models import Activity, Company, Contact, CustomField, Task, Team

    with in_tenant(app, crm):
        highest = max(
            db.session.scalar(select(func.coalesce(func.max(m.id), 0)))
            for m in (Company, Contact, Activity, Task, CustomField, Team)
        )
    with in_tenant(app, other):
        from tenants.customers import fields, teams

        v = viewer_of(other, "owner")
        for table in ("companies", "contacts", "activities", "tasks", "custom_fields", "teams"):
            db.session.execute(
                select(
                    func.setval(
                        func.pg_get_serial_sequence(f'"{other.schema}".{table}', "id"), highest + 1000
                    )
                )
            )
        db.session.commit()
        company = services.create_company(v, {"name": "Foreign Co"})
        contact = services.create_contact(v, {"first_name": "Foreign", "company_id": company.id})
        activity = timeline.log_activity(v, "company", company.id, "note", body="foreign note")
        task = tasks.create_task(v, {"title": "foreign task"}, company_id=company.id)
        field = fields.create_field("company", "Foreign field", "text", [])
        team = teams.create_team("Foreign team")
        ids = {
            "company_id": company.id,
            "contact_id": contact.id,
            "activity_id": activity.id,
            "task_id": task.id,
            "field_id": field.id,
            "team_id": team.id,
        }
    from tests.tenants.customers.routes import make_attachment

    ids["attachment_id"] = make_attachment(app, other, "company", ids["company_id"])
    from tests.tenants.customers.routes import make_import

    ids["import_id"] = make_import(app, other, other.people["owner"][0])  # a big id: never one of crm's
    return ids


def _customer_routes(app):
    from tests.factories import workspace_routes

    return [
        r
        for r in workspace_routes(app.url_map)
        if r.endpoint.startswith("workspace.customers.") and r.id_args
    ]


def test_forged_ids_of_another_workspace_are_404_and_write_nothing(app, crm, other, login, foreign):
    client = login("owner")
    routes = _customer_routes(app)
    assert len(routes) >= 25
    for route in routes:
        url = route.url(crm.slug, {arg: foreign[arg] for arg in route.id_args})
        before = db_state(app, crm.schema, other.schema)
        data = {
            "name": "x",
            "title": "x",
            "kind": "note",
            "body": "x",
            "label": "x",
            "stage": "churned",
            "first_name": "x",
        }
        resp = client.get(url) if route.method == "GET" else client.form(url, data)
        assert resp.status_code == 404, f"{route}: {resp.status_code}"
        assert "Foreign" not in resp.get_data(as_text=True)
        assert db_state(app, crm.schema, other.schema) == before, route
    # The other workspace's own owner does reach them (so the 404s are about the workspace).
    own = login("owner", other).get(f"/{other.slug}/customers/companies/{foreign['company_id']}")
    assert own.status_code == 200 and "Foreign Co" in own.get_data(as_text=True)


def test_editing_a_contact_keeps_a_company_link_the_editor_cannot_see(app, crm, login):
    from saas.extensions import db
    from tenants.customers import services
    from tenants.customers.models import Contact

    with in_tenant(app, crm):
        owner = viewer_of(crm, "owner")
        hidden = services.create_company(
            owner, {"name": "Hidden Parent", "owner_id": crm.people["support"][0]}
        )
        mine = services.create_contact(
            owner, {"first_name": "Kept", "owner_id": crm.people["sales"][0], "company_id": hidden.id}
        )
        contact_id, hidden_id = mine.id, hidden.id
    client = login("sales")
    form = client.get(f"/{crm.slug}/customers/contacts/{contact_id}/edit").get_data(as_text=True)
    assert "Hidden Parent" not in form
    resp = client.form(f"/{crm.slug}/customers/contacts/{contact_id}/edit", {"first_name": "Kept", "last_name": "Still",
                       "owner_id": str(crm.people["sales"][0]), "lifecycle_stage": "lead"})  # fmt: skip
    assert resp.status_code == 302
    with in_tenant(app, crm):
        assert db.session.get(Contact, contact_id).company_id == hidden_id


def test_company_timeline_names_the_contact_of_an_entry(crm, login, app):
    """A call logged on a contact shows on its company's timeline with the contact's name, as text."""
    with in_tenant(app, crm):
        from saas.extensions import db
        from tenants.customers import services, timeline

        owner = viewer_of(crm, "owner")
        company = services.create_company(owner, {"name": "Timeline Names Co"})
        contact = services.create_contact(
            owner, {"first_name": SCRIPT, "last_name": "Wanda", "company_id": company.id}
        )
        timeline.log_activity(owner, "contact", contact.id, "call", subject="Intro call")
        db.session.commit()
        company_id = company.id
    page = login("owner").get(f"/{crm.slug}/customers/companies/{company_id}").get_data(as_text=True)
    assert "Intro call" in page and "Wanda" in page and "with a contact" not in page
    assert SCRIPT not in page


def test_select_fields_write_the_html_wtforms_writes():
    """The customer forms' SelectField writes its options directly, to the byte what WTForms' writes."""
    import wtforms
    from markupsafe import Markup
    from wtforms.fields.choices import SelectChoice

    from tenants.customers.forms import SelectField

    choices = [
        ("", "— type an address —"),
        ("8", 'Ann "A" <ann@example.com> & co'),
        ('x"<&', None),
        (True, "yes"),
        SelectChoice("off", "Off", render_kw={"disabled": True}),
        (Markup("<b>"), Markup("<i>bold</i>")),
    ]

    class Theirs(wtforms.Form):
        pick = wtforms.SelectField(choices=choices, validate_choice=False)

    class Ours(wtforms.Form):
        pick = SelectField(choices=choices, validate_choice=False)

    for data in ("8", 'x"<&', "True", "none of them"):
        theirs, ours = Theirs(data={"pick": data}).pick, Ours(data={"pick": data}).pick
        assert ours(class_="form-select", id="p") == theirs(class_="form-select", id="p")
        assert str(ours) == str(theirs)
