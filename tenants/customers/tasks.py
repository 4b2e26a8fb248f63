"""Tasks: a title, a due date, an assignee and, usually, the company or contact it is about.

A task is open to its assignee and its author, and to whoever may see the
record it is about. "My tasks" lists what is assigned to the viewer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from saas.extensions import db
from tenants import listing
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import Company, Contact, Task
from tenants.customers.people import Viewer, is_active_member
from tenants.customers.services import get_company, get_contact
from tenants.customers.visibility import visible


def _moment(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(9, 0))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise CustomerError(_("Enter a date and time."), field) from None
    if not isinstance(value, datetime):
        raise CustomerError(_("Enter a date and time."), field)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 2000 <= value.year <= 2200:
        raise CustomerError(_("That date cannot be right."), field)
    return value


def _assignee(value: Any, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        user_id = int(value)
    except (TypeError, ValueError):
        raise CustomerError(_("Choose someone from the list."), "assignee_id") from None
    if not is_active_member(user_id):
        raise CustomerError(_("Choose someone from the list."), "assignee_id")
    return user_id


def _values(viewer: Viewer, data: dict[str, Any], task: Task | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if task is None or "title" in data:
        title = str(data.get("title") or "").strip()
        if not title:
            raise CustomerError(_("Say what is to be done."), "title")
        if len(title) > 200:
            raise CustomerError(_("The title can be at most 200 characters long."), "title")
        values["title"] = title
    if "notes" in data:
        notes = str(data.get("notes") or "").strip()
        if len(notes) > 5000:
            raise CustomerError(_("The notes can be at most 5,000 characters long."), "notes")
        values["notes"] = notes
    if "due_at" in data:
        values["due_at"] = _moment(data.get("due_at"), "due_at")
    if "reminder_at" in data:
        values["reminder_at"] = _moment(data.get("reminder_at"), "reminder_at")
        values["reminded_at"] = None
    due = values.get("due_at", task.due_at if task else None)
    remind = values.get("reminder_at", task.reminder_at if task else None)
    if remind and due and remind > due:
        raise CustomerError(_("The reminder should come before the task is due."), "reminder_at")
    if task is None or "assignee_id" in data:
        values["assignee_id"] = _assignee(data.get("assignee_id"), viewer.user_id)
    return values


def create_task(
    viewer: Viewer, data: dict[str, Any], company_id: int | None = None, contact_id: int | None = None
) -> Task:
    """A task, on a company or contact the viewer may see (a contact's task also shows on its company)."""
    values = _values(viewer, data, None)
    if contact_id is not None:
        contact = get_contact(viewer, contact_id)
        values["contact_id"], values["company_id"] = contact.id, contact.company_id
    elif company_id is not None:
        values["company_id"] = get_company(viewer, company_id).id
    task = Task(**values, created_by=viewer.user_id)
    db.session.add(task)
    db.session.commit()
    return task


def _may_see(viewer: Viewer, task: Task) -> bool:
    if viewer.user_id in (task.assignee_id, task.created_by) or viewer.visibility == "all":
        return True
    for model, record_id in ((Contact, task.contact_id), (Company, task.company_id)):
        if record_id is not None and db.session.scalar(
            select(model.id).where(model.id == record_id, visible(viewer, model))
        ):
            return True
    return False


def get_task(viewer: Viewer, task_id: int) -> Task:
    task = db.session.get(Task, task_id)
    if task is None or not _may_see(viewer, task):
        raise NotFound(task_id)
    return task


def update_task(viewer: Viewer, task_id: int, data: dict[str, Any]) -> Task:
    task = get_task(viewer, task_id)
    for key, value in _values(viewer, data, task).items():
        setattr(task, key, value)
    db.session.commit()
    return task


def set_done(viewer: Viewer, task_id: int, done: bool = True) -> Task:
    task = get_task(viewer, task_id)
    if done and task.done_at is None:
        task.done_at = datetime.now(UTC)
    elif not done:
        task.done_at = None
    db.session.commit()
    return task


def delete_task(viewer: Viewer, task_id: int) -> None:
    task = get_task(viewer, task_id)
    db.session.delete(task)
    db.session.commit()


def record_tasks(record_type: str, record_id: int, limit: int = 20) -> list[Task]:
    """Open tasks of a record (soonest due first), then the most recently done ones."""
    column = Task.company_id if record_type == "company" else Task.contact_id
    open_tasks = db.session.scalars(
        select(Task)
        .where(column == record_id, Task.done_at.is_(None))
        .order_by(Task.due_at.asc().nulls_last(), Task.id)
        .limit(limit)
    )
    done = db.session.scalars(
        select(Task)
        .where(column == record_id, Task.done_at.is_not(None))
        .order_by(Task.done_at.desc(), Task.id.desc())
        .limit(5)
    )
    return [*open_tasks, *done]


def open_counts(record_type: str, record_id: int) -> tuple[int, int]:
    """(open tasks, of which overdue) of a record."""
    column = Task.company_id if record_type == "company" else Task.contact_id
    row = db.session.execute(
        select(func.count(), func.count().filter(Task.due_at < func.now())).where(
            column == record_id, Task.done_at.is_(None)
        )
    ).one()
    return int(row[0]), int(row[1])


MY_TASKS_SPEC = listing.ListSpec(
    fields=[
        listing.Field("due_at", _l("Due"), Task.due_at, "datetime"),
        listing.Field("done_at", _l("Done"), Task.done_at, "datetime"),
        listing.Field("title", _l("Title"), Task.title, "text", nullable=False),
    ],
    id_column=Task.id,
    default_sort="due_at",
)


def my_tasks(viewer: Viewer, status: str = "open", args: Any = None) -> listing.Page:
    """The viewer's tasks: open ones by due date (undated last), or done ones, latest first."""
    query = listing.parse_args(MY_TASKS_SPEC, args or {})
    stmt = select(Task).where(Task.assignee_id == viewer.user_id)
    if status == "done":
        stmt = stmt.where(Task.done_at.is_not(None))
        if "sort" not in (args or {}):
            query.sort, query.desc = "done_at", True
    else:
        stmt = stmt.where(Task.done_at.is_(None))
    return listing.fetch_page(stmt, query)


def record_names(tasks: list[Task]) -> dict[tuple[str, int], str]:
    """Names of the companies and contacts these tasks are about (for lists of tasks)."""
    company_ids = {t.company_id for t in tasks if t.company_id}
    contact_ids = {t.contact_id for t in tasks if t.contact_id}
    out: dict[tuple[str, int], str] = {}
    if company_ids:
        for cid, name in db.session.execute(
            select(Company.id, Company.name).where(Company.id.in_(company_ids))
        ):
            out[("company", cid)] = name
    if contact_ids:
        for cid, name in db.session.execute(
            select(Contact.id, Contact.full_name).where(Contact.id.in_(contact_ids))
        ):
            out[("contact", cid)] = name
    return out
