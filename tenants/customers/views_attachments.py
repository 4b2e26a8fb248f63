"""Attachments on the 360 page: upload, download (only through here) and delete; the reminder rule form."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from saas.pages import render
from saas.permissions import require
from tenants.customers import attachments, people, reminders
from tenants.customers.errors import CustomerError
from tenants.customers.panels import register_panel
from tenants.customers.views import bp, found, record_url, viewer


def _upload(record_type: str, record_id: int) -> Any:
    found(attachments.check_record, viewer(), record_type, record_id)
    back = record_url(record_type, record_id, _anchor="panel-attachments")
    file = request.files.get("file")
    if file is None or not file.filename:
        flash(_("Choose a file to attach."), "danger")
        return redirect(back)
    try:
        row = found(attachments.upload, viewer(), record_type, record_id, file.filename, file.stream)
    except CustomerError as err:
        flash(str(err), "danger")
        return redirect(back)
    flash(_("%(name)s attached.", name=row.file_name), "success")
    return redirect(back)


@bp.post("/companies/<int:company_id>/attachments")
@require("customers", "edit")
def upload_company_attachment(company_id: int) -> Any:
    return _upload("company", company_id)


@bp.post("/contacts/<int:contact_id>/attachments")
@require("customers", "edit")
def upload_contact_attachment(contact_id: int) -> Any:
    return _upload("contact", contact_id)


@bp.get("/attachments/<int:attachment_id>")
@require("customers", "view")
def download_attachment(attachment_id: int) -> Any:
    row, data = found(attachments.read, viewer(), attachment_id)
    resp = Response(data, content_type=row.content_type)
    inline = row.content_type.startswith(("image/", "application/pdf")) and request.args.get("inline")
    resp.headers.set("Content-Disposition", "inline" if inline else "attachment", filename=row.file_name)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.post("/attachments/<int:attachment_id>/delete")
@require("customers", "delete")
def delete_attachment(attachment_id: int) -> Any:
    row = found(attachments.delete, viewer(), attachment_id)
    flash(_("%(name)s deleted.", name=row.file_name), "success")
    return redirect(record_url(row.record_type, row.record_id, _anchor="panel-attachments"))


# The reminder rule --------------------------------------------------------------------


@bp.route("/reminder-rule", methods=["GET", "POST"])
@require("settings", "edit")
def reminder_rule() -> Any:
    rule = reminders.get_rule()
    error = None
    if request.method == "POST":
        try:
            reminders.save_rule(
                people.Viewer.current(), request.form.get("enabled") == "on", request.form.get("days")
            )
        except CustomerError as err:
            error = str(err)
        else:
            flash(_("Reminder rule saved."), "success")
            return redirect(url_for(".reminder_rule"))
    return render(
        "customers/reminder_rule.html",
        rule=rule,
        error=error,
        form_days=request.form.get("days", rule.days),
        status=422 if error else 200,
    )


def load_attachments(record: Any, _viewer: people.Viewer) -> dict:
    record_type = "company" if record.__tablename__ == "companies" else "contact"
    items = attachments.record_attachments(record_type, record.id)
    return {
        "attachment_list": items,
        "uploader_names": people.names(a.uploaded_by for a in items),
        "upload_url": url_for(
            ".upload_company_attachment" if record_type == "company" else ".upload_contact_attachment",
            **{f"{record_type}_id": record.id},
        ),
        "max_mb": f"{attachments.max_bytes() / (1024 * 1024):g}",
        "allowed_types": ", ".join(sorted(attachments.ALLOWED)),
    }


for _record_type in ("company", "contact"):
    register_panel(
        _record_type,
        "attachments",
        _l("Attachments"),
        "customers/panels/_attachments.html",
        load_attachments,
        order=30,
    )
