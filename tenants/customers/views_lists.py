"""List tools on the "workspace.customers" blueprint: export, bulk actions with undo, saved views.

Each list (companies, contacts) gets the same routes; the record type comes from the URL rule,
never from the form. Every route carries @require; visibility is applied in the services.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, flash, make_response, redirect, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from saas import audit, tenancy
from saas.extensions import db
from saas.permissions import can, require
from tenants.customers import bulk, exports, people, saved_views
from tenants.customers import fields as custom_fields
from tenants.customers import listing as customer_listing
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.views import bp, safe_next, viewer

LIST_ENDPOINTS = {"company": "workspace.customers.companies", "contact": "workspace.customers.contacts"}
ACTION_LABELS = {
    "assign": lambda n: ngettext(
        "Assigned %(num)d record to a new owner.", "Assigned %(num)d records to a new owner.", n
    ),
    "tag_add": lambda n: ngettext("Tagged %(num)d record.", "Tagged %(num)d records.", n),
    "tag_remove": lambda n: ngettext(
        "Removed the tag from %(num)d record.", "Removed the tag from %(num)d records.", n
    ),
    "delete": lambda n: ngettext("Deleted %(num)d record.", "Deleted %(num)d records.", n),
}


def _spec(record_type: str) -> Any:
    owners = people.owner_choices()[1:]
    defs = custom_fields.definitions(record_type)
    if record_type == "company":
        return customer_listing.company_spec(owners, defs), defs
    return customer_listing.contact_spec(owners, defs), defs


def _back(record_type: str) -> Any:
    """Back to the list the form came from: a redirect, or HX-Redirect for htmx."""
    target = safe_next(url_for(LIST_ENDPOINTS[record_type]))
    if request.headers.get("HX-Request"):
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


@bp.context_processor
def _list_tools() -> dict[str, Any]:
    def list_tools(record_type: str) -> dict[str, Any]:
        v = viewer()
        batch = bulk.last_batch(v, record_type)
        return {
            "views": saved_views.views_for(v, record_type),
            "batch": batch if batch is not None and batch.undone_at is None and batch.count else None,
            "batch_label": ACTION_LABELS[batch.action](batch.count) if batch is not None else "",
            "owners": people.owner_choices()[1:],
            "plural": "companies" if record_type == "company" else "contacts",
        }

    return {"list_tools": list_tools}


# Export -------------------------------------------------------------------------------


def _export(record_type: str) -> Any:
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(404)
    v = viewer()
    spec, defs = _spec(record_type)
    owner_names = dict(people.members(active_only=False))
    cols = exports.columns(record_type, defs, owner_names)
    args = request.args.copy()
    args.poplist("format")
    plural = "companies" if record_type == "company" else "contacts"
    audit.record("export", plural, None, summary=f"{fmt}: {request.query_string.decode()[:300]}")
    db.session.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    name = f"{plural}-{stamp}.{fmt}"
    disposition = f'attachment; filename="{name}"'
    if fmt == "xlsx":
        data = exports.xlsx_bytes(exports.pages(v, record_type, spec, args), cols, plural)
        return Response(data, mimetype=exports.XLSX_TYPE, headers={"Content-Disposition": disposition})
    bound = tenancy.require_tenant()

    def generate() -> Any:
        # The rows are read while the response streams: bind the tenant for that time ourselves.
        with tenancy.bound(bound.id, bound.schema, bound.slug):
            try:
                for chunk in exports.csv_chunks(exports.pages(v, record_type, spec, args), cols):
                    yield chunk.encode("utf-8")
            finally:
                db.session.rollback()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )


@bp.get("/contacts/export")
@require("customers", "export")
def contacts_export() -> Any:
    return _export("contact")


@bp.get("/companies/export")
@require("customers", "export")
def companies_export() -> Any:
    return _export("company")


# Bulk actions -------------------------------------------------------------------------


def _bulk(record_type: str) -> Any:
    action = request.form.get("action", "")
    if action not in bulk.ACTIONS:
        flash(_("Choose what to do with the selected records."), "warning")
        return _back(record_type)
    if not can("customers", "delete" if action == "delete" else "edit"):
        abort(403)
    ids = bulk.parse_ids(request.form.getlist("ids"))
    if not ids:
        flash(_("Select one or more records first."), "warning")
        return _back(record_type)
    value = request.form.get("owner_id", "") if action == "assign" else request.form.get("tag", "")
    try:
        batch = bulk.run(viewer(), record_type, action, ids, value)
    except CustomerError as err:
        db.session.rollback()
        flash(str(err), "danger")
        return _back(record_type)
    if batch is None:
        flash(_("None of the selected records could be changed."), "warning")
    else:
        flash(ACTION_LABELS[action](batch.count), "success")
    return _back(record_type)


def _undo(record_type: str) -> Any:
    try:
        batch_id = int(request.form.get("batch_id", ""))
    except ValueError:
        flash(_("There is nothing to undo."), "warning")
        return _back(record_type)
    v = viewer()
    batch = db.session.get(bulk.BulkBatch, batch_id)
    if batch is None or batch.user_id != v.user_id or batch.record_type != record_type:
        flash(_("There is nothing to undo."), "warning")
        return _back(record_type)
    if not can("customers", "delete" if batch.action == "delete" else "edit"):
        abort(403)
    try:
        bulk.undo(v, batch_id)
    except NotFound:
        flash(_("There is nothing to undo."), "warning")
    except CustomerError as err:
        db.session.rollback()
        flash(str(err), "danger")
    else:
        flash(_("Undone."), "success")
    return _back(record_type)


@bp.post("/contacts/bulk")
@require("customers", "edit")
def contacts_bulk() -> Any:
    return _bulk("contact")


@bp.post("/companies/bulk")
@require("customers", "edit")
def companies_bulk() -> Any:
    return _bulk("company")


@bp.post("/contacts/bulk/undo")
@require("customers", "edit")
def contacts_bulk_undo() -> Any:
    return _undo("contact")


@bp.post("/companies/bulk/undo")
@require("customers", "edit")
def companies_bulk_undo() -> Any:
    return _undo("company")


# Saved views --------------------------------------------------------------------------


def _save_view(record_type: str) -> Any:
    try:
        view = saved_views.save(
            viewer(),
            record_type,
            request.form.get("name", ""),
            request.form.get("query", ""),
            shared=bool(request.form.get("shared")),
        )
    except CustomerError as err:
        db.session.rollback()
        flash(str(err), "danger")
        return _back(record_type)
    flash(_("View %(name)s saved.", name=view.name), "success")
    target = url_for(LIST_ENDPOINTS[record_type]) + (f"?{view.query}" if view.query else "")
    return redirect(target)


def _delete_view(record_type: str) -> Any:
    try:
        view_id = int(request.form.get("view_id", ""))
        saved_views.delete(viewer(), view_id)
    except (ValueError, NotFound):
        flash(_("There is no such view of yours."), "warning")
    else:
        flash(_("View deleted."), "success")
    return _back(record_type)


@bp.post("/contacts/views")
@require("customers", "view")
def contacts_save_view() -> Any:
    return _save_view("contact")


@bp.post("/companies/views")
@require("customers", "view")
def companies_save_view() -> Any:
    return _save_view("company")


@bp.post("/contacts/views/delete")
@require("customers", "view")
def contacts_delete_view() -> Any:
    return _delete_view("contact")


@bp.post("/companies/views/delete")
@require("customers", "view")
def companies_delete_view() -> Any:
    return _delete_view("company")
