"""What the route-inventory tests (tests/saas/test_isolation.py, test_permissions.py) need for the
"workspace.customers.*" routes: a valid form per POST route, and a fresh record per URL id.

Records get random ids far above any identity sequence, so an id of one workspace is (practically)
never also an id in another: a forged id is "not found", not someone else's record of the same number.
They are owned by the workspace's "sales" member (else its owner), and every member is put in one team,
so every built-in role's visibility (own / team / all) lets them see the records the tests name.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

from tests.factories import unique, upload_file

CUSTOMER_ARGS = (
    "company_id",
    "contact_id",
    "activity_id",
    "task_id",
    "field_id",
    "team_id",
    "attachment_id",
    "import_id",
)

CUSTOMER_FORMS: dict[str, Callable[[], dict[str, Any]]] = {
    "workspace.customers.new_company": lambda: {"name": unique("Company "), "lifecycle_stage": "lead"},
    "workspace.customers.edit_company": lambda: {"name": unique("Renamed "), "lifecycle_stage": "prospect"},
    "workspace.customers.company_stage": lambda: {"stage": "customer"},
    "workspace.customers.new_contact": lambda: {"first_name": unique("Ann "), "lifecycle_stage": "lead"},
    "workspace.customers.edit_contact": lambda: {"first_name": unique("Bea "), "lifecycle_stage": "prospect"},
    "workspace.customers.contact_stage": lambda: {"stage": "customer"},
    "workspace.customers.log_company_activity": lambda: {"kind": "note", "body": "<p>Test note</p>"},
    "workspace.customers.log_contact_activity": lambda: {"kind": "call", "subject": "Test call"},
    "workspace.customers.new_company_task": lambda: {"title": unique("Task ")},
    "workspace.customers.new_contact_task": lambda: {"title": unique("Task ")},
    "workspace.customers.edit_task": lambda: {"title": unique("Task ")},
    "workspace.customers.new_field": lambda: {
        "record_type": "contact",
        "label": unique("Field "),
        "field_type": "text",
    },
    "workspace.customers.edit_field": lambda: {"label": unique("Field ")},
    "workspace.customers.new_team": lambda: {"name": unique("Team ")},
    "workspace.customers.rename_team": lambda: {"name": unique("Team ")},
    # Lists (tenants/customers/views_lists.py): no ids chosen, so an allowed request changes nothing.
    "workspace.customers.contacts_bulk": lambda: {"action": "tag_add", "tag": "route-test"},
    "workspace.customers.companies_bulk": lambda: {"action": "tag_add", "tag": "route-test"},
    "workspace.customers.contacts_save_view": lambda: {"name": unique("View "), "query": "name=a"},
    "workspace.customers.companies_save_view": lambda: {"name": unique("View "), "query": "name=a"},
    "workspace.customers.upload_company_attachment": lambda: {"file": upload_file(b"hello", "hello.txt")},
    "workspace.customers.upload_contact_attachment": lambda: {"file": upload_file(b"hello", "hello.txt")},
    "workspace.customers.reminder_rule": lambda: {"enabled": "on", "days": "21"},
    # Imports (tenants/customers/views_imports.py): every POST answers with a redirect.
    "workspace.customers.new_import": lambda: {
        "record_type": "contact",
        "file": (io.BytesIO(b"Name,Email\nAnn Lee,ann@example.com\n"), "people.csv"),
    },
    "workspace.customers.check_import": lambda: {"col-0": "name", "col-1": "email"},
    # Emails (tenants/customers/views_emails.py); send-again of a note is refused with a redirect.
    "workspace.customers.email_company": lambda: {
        "to_address": f"{unique('to')}@example.com",
        "subject": "Route test",
        "body": "Hello",
    },
    "workspace.customers.email_contact": lambda: {"subject": "Route test", "body": "Hello"},
}


def customer_form(endpoint: str) -> dict[str, Any] | None:
    """A valid form for a customers POST route (None: not a customers route; {}: none needed)."""
    if not endpoint.startswith("workspace.customers."):
        return None
    return CUSTOMER_FORMS.get(endpoint, dict)()


def _big_id() -> int:
    return random.randrange(10**12, 10**13)


def customer_target(app: Any, tenant: Any, arg: str) -> int:
    """A fresh record of `tenant` for the URL argument `arg` (one of CUSTOMER_ARGS)."""
    from sqlalchemy import select

    from saas import tenancy
    from saas.extensions import db
    from saas.models import Membership
    from tenants.customers.models import Activity, Company, Contact, CustomField, Task, Team, TeamMember

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        try:
            owner_id = tenant.people.get("sales", tenant.people["owner"])[0]
            everyone = db.session.scalar(select(Team).where(Team.name == "Everyone (route tests)"))
            if everyone is None:
                everyone = Team(id=_big_id(), name="Everyone (route tests)")
                db.session.add(everyone)
                db.session.flush()
            members = db.session.scalars(select(Membership.user_id).where(Membership.tenant_id == tenant.id))
            for user_id in members:
                if db.session.get(TeamMember, (everyone.id, user_id)) is None:
                    db.session.add(TeamMember(team_id=everyone.id, user_id=user_id))
            company = Company(id=_big_id(), name=unique("Target Co "), owner_id=owner_id)
            db.session.add(company)
            db.session.flush()
            if arg == "company_id":
                made = company.id
            elif arg == "contact_id":
                contact = Contact(
                    id=_big_id(),
                    first_name="Target",
                    full_name="Target",
                    email=f"target{_big_id()}@example.com",
                    company_id=company.id,
                    owner_id=owner_id,
                )
                db.session.add(contact)
                made = contact.id
            elif arg == "activity_id":
                activity = Activity(
                    id=_big_id(), kind="note", body="<p>target</p>", company_id=company.id, user_id=owner_id
                )
                db.session.add(activity)
                made = activity.id
            elif arg == "task_id":
                task = Task(id=_big_id(), title="Target task", company_id=company.id, assignee_id=owner_id)
                db.session.add(task)
                made = task.id
            elif arg == "field_id":
                field = CustomField(
                    id=_big_id(),
                    record_type="contact",
                    key=f"f{_big_id()}",
                    label="Target",
                    field_type="text",
                )
                db.session.add(field)
                made = field.id
            elif arg == "attachment_id":
                made = None
            elif arg == "import_id":
                db.session.commit()
                return make_import(app, tenant, owner_id)
            elif arg == "team_id":
                team = Team(id=_big_id(), name=unique("Target team "))
                db.session.add(team)
                made = team.id
            else:
                raise KeyError(arg)
            db.session.commit()
            if made is None:  # an attachment (with its stored file) on the company
                made = make_attachment(app, tenant, "company", company.id, owner_id)
            return made
        finally:
            db.session.remove()


def make_attachment(
    app: Any, tenant: Any, record_type: str, record_id: int, user_id: int | None = None
) -> int:
    """An attachment of `tenant` on a record, with its file in the configured storage; its id."""
    import uuid

    from saas import tenancy
    from saas.extensions import db
    from tenants.customers import attachments
    from tenants.customers.extra_models import Attachment

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        try:
            key = f"{tenant.id}/{uuid.uuid4().hex}"
            attachments.storage().put(key, b"target file", "text/plain; charset=utf-8")
            row = Attachment(
                id=_big_id(),
                record_type=record_type,
                record_id=record_id,
                file_name="target.txt",
                content_type="text/plain; charset=utf-8",
                size=11,
                storage_key=key,
                uploaded_by=user_id,
            )
            db.session.add(row)
            db.session.commit()
            return row.id
        finally:
            db.session.remove()


def make_import(app: Any, tenant: Any, user_id: int | None = None) -> int:
    """An uploaded (not yet checked) contact import of `tenant`, with its stored CSV file; its id."""
    import uuid
    from pathlib import Path

    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.imports.models import Import

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        try:
            key = f"{tenant.id}/{uuid.uuid4().hex}.csv"
            path = Path(app.instance_path) / "imports" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"Name,Email\nAnn Target,ann.target@example.com\n")
            row = Import(
                id=_big_id(),
                record_type="contact",
                status="uploaded",
                file_name="target.csv",
                file_format="csv",
                encoding="utf-8-sig",
                storage_key=key,
                headers=["Name", "Email"],
                mapping={"0": "name", "1": "email"},
                created_by=user_id,
            )
            db.session.add(row)
            db.session.commit()
            return row.id
        finally:
            db.session.remove()
