"""Import pages on the "workspace.customers" blueprint: upload, mapping with a preview and dry run,
the job with a live progress bar, the error report and undo (logic in tenants.customers.imports)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField

from saas.pages import form_errors, render
from saas.permissions import can, require
from tenants.customers.errors import CustomerError
from tenants.customers.imports import reading, services
from tenants.customers.views import bp, found, viewer


class UploadForm(FlaskForm):
    record_type = SelectField(
        _l("What the file holds"),
        choices=[("contact", "contacts"), ("company", "companies")],
        default="contact",
    )
    encoding = SelectField(_l("Encoding"), choices=[("", "")], default="")
    file = FileField(_l("File (CSV or XLSX)"))


def _upload_form() -> UploadForm:
    form = UploadForm()
    form.record_type.choices = [("contact", _("Contacts")), ("company", _("Companies"))]
    form.encoding.choices = [("", _("Detect it")), *[(k, str(v)) for k, v in reading.ENCODINGS.items()]]
    return form


@bp.get("/imports")
@require("customers", "create")
def imports() -> Any:
    return render("customers/imports/list.html", items=services.list_imports(viewer()), form=_upload_form())


@bp.route("/imports/new", methods=["GET", "POST"])
@require("customers", "create")
def new_import() -> Any:
    form = _upload_form()
    if form.validate_on_submit():
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise CustomerError(_("Choose a file to upload."), "file")
            imp = services.create_import(
                viewer(), form.record_type.data, upload.filename, upload.stream, form.encoding.data or ""
            )
        except CustomerError as err:
            form_errors(form, err)
        else:
            return redirect(url_for(".import_page", import_id=imp.id))
    status = 422 if form.errors or form.form_errors else 200
    return render("customers/imports/new.html", form=form, status=status)


def _context(imp: Any) -> dict[str, Any]:
    return {
        "imp": imp,
        "fields": services.FIELDS[imp.record_type],
        "field_labels": services.FIELD_LABELS,
        "preview": services.preview(imp) if imp.status in ("uploaded", "checked") else [],
        "missing": services.missing_columns(imp.record_type, imp.mapping),
        "errors_shown": (imp.errors or [])[: services.MAX_ERRORS_SHOWN],
        "encodings": reading.ENCODINGS,
    }


@bp.get("/imports/<int:import_id>")
@require("customers", "create")
def import_page(import_id: int) -> Any:
    imp = found(services.get_import, viewer(), import_id)
    return render("customers/imports/show.html", **_context(imp))


@bp.get("/imports/<int:import_id>/progress")
@require("customers", "create")
def import_progress(import_id: int) -> Any:
    imp = found(services.get_import, viewer(), import_id)
    return render("customers/imports/show.html", "customers/imports/_progress.html", **_context(imp))


class _Form(FlaskForm):
    pass


def _posted(import_id: int) -> Any:
    imp = found(services.get_import, viewer(), import_id)
    if not _Form().validate_on_submit():
        flash(_("The form has expired: reload the page and try again."), "danger")
        return imp, False
    return imp, True


@bp.post("/imports/<int:import_id>/check")
@require("customers", "create")
def check_import(import_id: int) -> Any:
    """Save the mapping and run the dry run: every row checked, nothing written."""
    imp, ok = _posted(import_id)
    if ok:
        try:
            services.set_mapping(viewer(), imp, request.form.to_dict())
            outcome = services.dry_run(viewer(), can("customers", "edit"), imp)
        except CustomerError as err:
            flash(str(err), "danger")
        else:
            flash(
                _(
                    "Dry run: %(total)d rows, %(created)d to add, %(updated)d to update, %(errors)d with errors."
                    " Nothing was written.",
                    total=outcome.total,
                    created=outcome.created,
                    updated=outcome.updated,
                    errors=len(outcome.errors),
                ),
                "info",
            )
    return redirect(url_for(".import_page", import_id=import_id))


@bp.post("/imports/<int:import_id>/start")
@require("customers", "create")
def start_import(import_id: int) -> Any:
    imp, ok = _posted(import_id)
    if ok:
        try:
            services.queue_run(viewer(), imp)
        except CustomerError as err:
            flash(str(err), "danger")
        else:
            flash(_("The import has started."), "success")
    return redirect(url_for(".import_page", import_id=import_id))


@bp.post("/imports/<int:import_id>/undo")
@require("customers", "delete")
def undo_import(import_id: int) -> Any:
    imp, ok = _posted(import_id)
    if ok:
        try:
            deleted, restored = services.undo(viewer(), imp)
        except CustomerError as err:
            flash(str(err), "danger")
        else:
            flash(
                _(
                    "Import undone: %(deleted)d records deleted, %(restored)d given their previous values back.",
                    deleted=deleted,
                    restored=restored,
                ),
                "success",
            )
    return redirect(url_for(".import_page", import_id=import_id))


@bp.get("/imports/<int:import_id>/errors.csv")
@require("customers", "create")
def import_errors(import_id: int) -> Any:
    imp = found(services.get_import, viewer(), import_id)
    name = f"import-{imp.id}-errors.csv"
    return Response(
        services.error_report(imp),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
