"""This module's own 360 panels, registered the way any other module registers its panels."""

from __future__ import annotations

from typing import Any

from flask import render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tenants.customers import people, services, tasks
from tenants.customers.forms import TaskForm
from tenants.customers.panels import register_panel


def _task_form() -> TaskForm:
    form = TaskForm(formdata=None)
    form.assignee_id.choices = people.owner_choices(blank=_("Me"))
    return form


def load_tasks(
    record: Any, viewer: people.Viewer, form: TaskForm | None = None, message: str | None = None
) -> dict:
    record_type = "company" if record.__tablename__ == "companies" else "contact"
    items = tasks.record_tasks(record_type, record.id)
    return {
        "task_list": items,
        "task_form": form or _task_form(),
        "task_records": tasks.record_names(items),
        "assignee_names": people.names(t.assignee_id for t in items),
        "task_message": message,
        "new_task_url": url_for(
            ".new_company_task" if record_type == "company" else ".new_contact_task",
            **{f"{record_type}_id": record.id},
        ),
    }


def tasks_panel_html(record_type: str, record: Any, form: TaskForm, message: str | None) -> str:
    """The tasks panel alone, for an htmx answer to the inline task form."""
    ctx = load_tasks(record, people.Viewer.current(), form, message)
    return render_template(
        "customers/panels/_tasks.html",
        record=record,
        record_type=record_type,
        panel_title=_("Tasks"),
        standalone=True,
        **ctx,
    )


def load_contacts(record: Any, viewer: people.Viewer) -> dict:
    return {
        "contacts": services.company_contacts(viewer, record.id, limit=10),
        "contact_total": services.count_company_contacts(viewer, record.id),
    }


def load_company(record: Any, viewer: people.Viewer) -> dict:
    parent = None
    if record.company_id:
        try:
            parent = services.get_company(viewer, record.company_id)
        except LookupError:
            parent = None
    colleagues = []
    if parent is not None:
        colleagues = [c for c in services.company_contacts(viewer, parent.id, limit=8) if c.id != record.id]
    return {"parent": parent, "colleagues": colleagues}


register_panel(
    "company", "contacts", _l("Contacts"), "customers/panels/_contacts.html", load_contacts, order=10
)
register_panel("company", "tasks", _l("Tasks"), "customers/panels/_tasks.html", load_tasks, order=20)
register_panel("contact", "company", _l("Company"), "customers/panels/_company.html", load_company, order=10)
register_panel("contact", "tasks", _l("Tasks"), "customers/panels/_tasks.html", load_tasks, order=20)
