"""Timeline entries and tasks: logged inline on the 360 page with htmx, or as plain forms."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from saas.pages import form_errors, render, wants_partial
from saas.permissions import require
from tenants.customers import people, services, tasks, timeline
from tenants.customers.errors import CustomerError
from tenants.customers.forms import ActivityForm, TaskForm
from tenants.customers.views import (
    bp,
    found,
    record_page,
    record_url,
    safe_next,
    timeline_block,
    timeline_context,
    to_local,
    to_utc,
    viewer,
)

# Timeline -----------------------------------------------------------------------------


def _timeline(record_type: str, record_id: int) -> Any:
    """The next page of a timeline (htmx "older" button), or the record page from there for a plain request."""
    record = found(services.get_record, viewer(), record_type, record_id)
    if not wants_partial():
        return record_page(record_type, record)
    ctx = timeline_context(record_type, record)
    return render(
        "customers/_timeline_entries.html",
        "customers/_timeline_entries.html",
        record=record,
        record_type=record_type,
        **ctx,
    )


@bp.get("/companies/<int:company_id>/timeline")
@require("customers", "view")
def company_timeline(company_id: int) -> Any:
    return _timeline("company", company_id)


@bp.get("/contacts/<int:contact_id>/timeline")
@require("customers", "view")
def contact_timeline(contact_id: int) -> Any:
    return _timeline("contact", contact_id)


def _log(record_type: str, record_id: int) -> Any:
    record = found(services.get_record, viewer(), record_type, record_id)
    form = ActivityForm()
    if form.validate_on_submit():
        try:
            activity = found(
                timeline.log_activity,
                viewer(),
                record_type,
                record_id,
                form.kind.data,
                subject=form.subject.data or "",
                body=form.body.data or "",
                occurred_at=to_utc(form.occurred_at.data),
                meta={"duration_min": form.duration_min.data, "direction": form.direction.data},
            )
        except CustomerError as err:
            form_errors(form, err)
        else:
            message = _("%(kind)s logged.", kind=timeline.KIND_LABELS[activity.kind])
            if wants_partial():
                fresh = ActivityForm(formdata=None, kind=activity.kind)
                return timeline_block(record_type, record, activity_form=fresh, logged=message)
            flash(message, "success")
            return redirect(record_url(record_type, record_id, _anchor="timeline"))
    if wants_partial():
        return timeline_block(record_type, record, 422, activity_form=form)
    return record_page(record_type, record, form, 422)


@bp.post("/companies/<int:company_id>/activities")
@require("customers", "edit")
def log_company_activity(company_id: int) -> Any:
    return _log("company", company_id)


@bp.post("/contacts/<int:contact_id>/activities")
@require("customers", "edit")
def log_contact_activity(contact_id: int) -> Any:
    return _log("contact", contact_id)


@bp.post("/activities/<int:activity_id>/delete")
@require("customers", "edit")
def delete_activity(activity_id: int) -> Any:
    activity = found(timeline.get_activity, viewer(), activity_id)
    back = (
        record_url("contact", activity.contact_id)
        if activity.contact_id and not activity.company_id
        else record_url("company", activity.company_id)
        if activity.company_id
        else url_for(".contacts")
    )
    try:
        found(timeline.delete_activity, viewer(), activity_id)
    except CustomerError as err:
        if wants_partial():
            return render(
                "_partials/error_message.html",
                "_partials/error_message.html",
                422,
                message=str(err),
                status_code=422,
            )
        flash(str(err), "danger")
        return redirect(safe_next(back))
    if wants_partial():
        return "", 200
    flash(_("Entry deleted."), "success")
    return redirect(safe_next(back))


# Tasks --------------------------------------------------------------------------------


def _task_form(formdata: Any = None, **initial: Any) -> TaskForm:
    form = TaskForm(formdata=formdata, **initial) if formdata is not False else TaskForm(**initial)
    form.assignee_id.choices = people.owner_choices(blank=_("Me"))
    return form


def _task_data(form: TaskForm) -> dict[str, Any]:
    return {
        "title": form.title.data,
        "notes": form.notes.data,
        "due_at": to_utc(form.due_at.data),
        "reminder_at": to_utc(form.reminder_at.data),
        "assignee_id": form.assignee_id.data or None,
    }


def _new_task(record_type: str, record_id: int) -> Any:
    record = found(services.get_record, viewer(), record_type, record_id)
    form = _task_form(formdata=False)
    error = None
    if form.validate_on_submit():
        try:
            found(
                tasks.create_task,
                viewer(),
                _task_data(form),
                company_id=record_id if record_type == "company" else None,
                contact_id=record_id if record_type == "contact" else None,
            )
        except CustomerError as err:
            form_errors(form, err)
            error = err
        else:
            if wants_partial():
                from tenants.customers.builtin_panels import tasks_panel_html

                return tasks_panel_html(record_type, record, _task_form(formdata=None), _("Task added."))
            flash(_("Task added."), "success")
            return redirect(record_url(record_type, record_id, _anchor="panel-tasks"))
    if wants_partial():
        from tenants.customers.builtin_panels import tasks_panel_html

        return tasks_panel_html(record_type, record, form, None), 422
    flash(str(error) if error else _("Check the task: %(errors)s", errors=_errors_text(form)), "danger")
    return redirect(record_url(record_type, record_id, _anchor="panel-tasks"))


def _errors_text(form: TaskForm) -> str:
    return "; ".join(f"{form[name].label.text}: {' '.join(errs)}" for name, errs in form.errors.items())


@bp.post("/companies/<int:company_id>/tasks")
@require("customers", "edit")
def new_company_task(company_id: int) -> Any:
    return _new_task("company", company_id)


@bp.post("/contacts/<int:contact_id>/tasks")
@require("customers", "edit")
def new_contact_task(contact_id: int) -> Any:
    return _new_task("contact", contact_id)


@bp.get("/tasks")
@require("customers", "view")
def my_tasks() -> Any:
    status = "done" if request.args.get("status") == "done" else "open"
    page = tasks.my_tasks(viewer(), status, request.args)
    items = page.items
    return render(
        "customers/my_tasks.html",
        "customers/_task_rows.html",
        page=page,
        task_status=status,
        task_list=items,
        task_records=tasks.record_names(items),
    )


def _task_done(task_id: int, done: bool) -> Any:
    task = found(tasks.set_done, viewer(), task_id, done)
    if wants_partial():
        return render(
            "customers/_task_item.html",
            "customers/_task_item.html",
            task=task,
            task_records=tasks.record_names([task]),
            compact=request.values.get("compact") == "1",
        )
    flash(_("Task done.") if done else _("Task opened again."), "success")
    return redirect(safe_next(url_for(".my_tasks")))


@bp.post("/tasks/<int:task_id>/done")
@require("customers", "edit")
def task_done(task_id: int) -> Any:
    return _task_done(task_id, True)


@bp.post("/tasks/<int:task_id>/reopen")
@require("customers", "edit")
def task_reopen(task_id: int) -> Any:
    return _task_done(task_id, False)


@bp.route("/tasks/<int:task_id>/edit", methods=["GET", "POST"])
@require("customers", "edit")
def edit_task(task_id: int) -> Any:
    task = found(tasks.get_task, viewer(), task_id)
    if request.method == "POST":
        form = _task_form(formdata=False)
    else:
        form = _task_form(
            formdata=None,
            title=task.title,
            notes=task.notes,
            due_at=to_local(task.due_at),
            reminder_at=to_local(task.reminder_at),
            assignee_id=str(task.assignee_id or ""),
        )
    if form.validate_on_submit():
        try:
            found(tasks.update_task, viewer(), task_id, _task_data(form))
        except CustomerError as err:
            form_errors(form, err)
        else:
            flash(_("Task saved."), "success")
            return redirect(safe_next(url_for(".my_tasks")))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "customers/task_form.html",
        form=form,
        task=task,
        task_records=tasks.record_names([task]),
        status=status,
    )


@bp.post("/tasks/<int:task_id>/delete")
@require("customers", "edit")
def delete_task(task_id: int) -> Any:
    found(tasks.delete_task, viewer(), task_id)
    if wants_partial():
        return "", 200
    flash(_("Task deleted."), "success")
    return redirect(safe_next(url_for(".my_tasks")))
