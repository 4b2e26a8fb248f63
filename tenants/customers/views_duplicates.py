"""Duplicates on the "workspace.customers" blueprint: the review page, one record's possible
duplicates, merge and "not duplicates" (logic in tenants.customers.duplicates).

Merge needs customers "delete" (the route's permission) and "edit"; marking "not duplicates" needs
"edit". The record in the URL of a POST is the cluster's first record: a record of another workspace,
or one the viewer cannot see, is a 404 before anything else is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from saas.extensions import db
from saas.pages import render
from saas.permissions import can, require
from tenants.customers import bulk, duplicates, people, services
from tenants.customers import fields as custom_fields
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.views import bp, found, record_url, safe_next, viewer

TYPES = ("contact", "company")


@dataclass
class Row:
    """One line of a cluster's side-by-side table: a field group's value in each record."""

    key: str  # the choice's form name is "f_<key>"
    label: Any
    cells: list[tuple[int, str]]  # (record id, the value as shown)
    differs: bool
    default: int  # the record whose value a merge keeps unless told otherwise
    choosable: bool = True  # False: every value is kept (emails, phones, tags)


@bp.app_template_global()
def possible_duplicates(record_type: str, record: Any) -> int:
    """How many possible duplicates the 360 page's hint shows (up to 10: one indexed lookup)."""
    return len(duplicates.candidates(viewer(), record_type, record, limit=10))


def _shown(record_type: str, key: str, value: tuple, names: dict[str, dict[int, str]]) -> str:
    first = value[0]
    if key == "owner_id":
        return names["owners"].get(first, f"#{first}") if first else ""
    if key == "company_id":
        return names["companies"].get(first, _("a company you do not see")) if first else ""
    if key == "lifecycle_stage":
        return str(services.STAGE_LABELS.get(first, first))
    if key == "name" and record_type == "contact":
        return services.full_name(*value)
    if key == "address":
        return ", ".join(v for v in value if v)
    if key.startswith("consent_"):
        return _("given: %(how)s", how=value[2]) if first else ""
    if key == "website":
        return first or ""
    return "" if first is None else str(first)


def _names(record_type: str, records: list[Any]) -> dict[str, dict[int, str]]:
    owners = people.names(r.owner_id for r in records)
    companies: dict[int, str] = {}
    if record_type == "contact":
        for cid in {r.company_id for r in records if r.company_id}:
            try:
                companies[cid] = services.get_company(viewer(), cid).name
            except NotFound:
                pass
    return {"owners": owners, "companies": companies}


def rows_of(record_type: str, records: list[Any]) -> list[Row]:
    """The side-by-side table of a cluster; the first record is the master the page proposes."""
    names = _names(record_type, records)
    rows = []
    for group in duplicates.GROUPS[record_type]:
        values = [duplicates.group_value(r, group) for r in records]
        cells = [
            (r.id, _shown(record_type, group.key, v, names)) for r, v in zip(records, values, strict=True)
        ]
        default = records[duplicates.default_source(values)].id
        rows.append(Row(group.key, group.label, cells, len({c for _i, c in cells}) > 1, default))
    labels = {"emails": _("Further emails"), "phones": _("Phones"), "tags": _("Tags")}
    for key in duplicates.UNIONS[record_type]:
        cells = [(r.id, ", ".join(getattr(r, key) or [])) for r in records]
        differs = len({c for _i, c in cells}) > 1
        rows.append(Row(key, labels[key], cells, differs, records[0].id, choosable=False))
    for d in custom_fields.definitions(record_type):
        values = [(r.custom or {}).get(d.key) for r in records]
        cells = [(r.id, custom_fields.shown(d, v)) for r, v in zip(records, values, strict=True)]
        default = records[duplicates.default_source(values)].id
        rows.append(Row(f"custom.{d.key}", d.label, cells, len({c for _i, c in cells}) > 1, default))
    return rows


def _cluster_view(cluster: duplicates.Cluster) -> dict[str, Any]:
    return {"cluster": cluster, "rows": rows_of(cluster.record_type, cluster.records)}


@bp.get("/duplicates")
@require("customers", "view")
def duplicates_review() -> Any:
    record_type = request.args.get("type", "contact")
    if record_type not in TYPES:
        abort(404)
    reason = request.args.get("reason") or duplicates.REASONS[record_type][0]
    if reason not in duplicates.REASONS[record_type]:
        abort(404)
    after = request.args.get("after", "")[:1000]
    page = found(duplicates.review, viewer(), record_type, reason, after)
    return render(
        "customers/duplicates.html",
        record_type=record_type,
        reason=reason,
        reasons=duplicates.REASONS[record_type],
        reason_labels=duplicates.REASON_LABELS,
        clusters=[_cluster_view(c) for c in page.clusters],
        next_after=page.after,
        first_page=not after,
    )


def _record_duplicates(record_type: str, record_id: int) -> Any:
    cluster = found(duplicates.record_cluster, viewer(), record_type, record_id)
    return render(
        "customers/duplicates_record.html",
        record_type=record_type,
        record=cluster.records[0],
        reason_labels=duplicates.REASON_LABELS,
        **_cluster_view(cluster),
    )


@bp.get("/contacts/<int:contact_id>/duplicates")
@require("customers", "view")
def contact_duplicates(contact_id: int) -> Any:
    return _record_duplicates("contact", contact_id)


@bp.get("/companies/<int:company_id>/duplicates")
@require("customers", "view")
def company_duplicates(company_id: int) -> Any:
    return _record_duplicates("company", company_id)


# Merge and "not duplicates" ----------------------------------------------------------------------


def _back(record_type: str, record_id: int) -> Any:
    endpoint = ".contact_duplicates" if record_type == "contact" else ".company_duplicates"
    return redirect(safe_next(url_for(endpoint, **{f"{record_type}_id": record_id})))


def _merge(record_type: str, anchor: int) -> Any:
    if not can("customers", "edit"):
        abort(403)
    v = viewer()
    found(services.get_record, v, record_type, anchor)
    ids = bulk.parse_ids(request.form.getlist("ids"))
    keep = (bulk.parse_ids([request.form.get("keep") or str(anchor)]) or [0])[0]  # 0: found nowhere
    others = [i for i in ids if i != keep]
    choices = {k[2:]: value for k, value in request.form.items() if k.startswith("f_")}
    try:
        kept = duplicates.merge(v, record_type, keep, others, choices)
    except NotFound:
        db.session.rollback()
        abort(404)
    except CustomerError as err:
        db.session.rollback()
        flash(str(err), "danger")
        return _back(record_type, anchor)
    name = kept.name if record_type == "company" else kept.display_name
    flash(
        ngettext(
            "Merged %(num)d record into %(name)s.",
            "Merged %(num)d records into %(name)s.",
            len(others),
            name=name,
        ),
        "success",
    )
    try:
        services.get_record(v, record_type, kept.id)
    except NotFound:  # the owner chosen is someone whose records this person does not see
        flash(_("It now belongs to someone whose records you do not see."), "info")
        return redirect(url_for(".duplicates_review", type=record_type))
    return redirect(safe_next(record_url(record_type, kept.id)))


@bp.post("/contacts/<int:contact_id>/merge")
@require("customers", "delete")
def merge_contacts(contact_id: int) -> Any:
    return _merge("contact", contact_id)


@bp.post("/companies/<int:company_id>/merge")
@require("customers", "delete")
def merge_companies(company_id: int) -> Any:
    return _merge("company", company_id)


def _dismiss(record_type: str, anchor: int) -> Any:
    v = viewer()
    found(services.get_record, v, record_type, anchor)
    ids = bulk.parse_ids(request.form.getlist("ids"))
    try:
        found(duplicates.dismiss, v, record_type, ids)
    except CustomerError as err:
        db.session.rollback()
        flash(str(err), "danger")
    else:
        flash(_("Marked as not duplicates: they are not offered together again."), "success")
    return _back(record_type, anchor)


@bp.post("/contacts/<int:contact_id>/not-duplicates")
@require("customers", "edit")
def dismiss_contacts(contact_id: int) -> Any:
    return _dismiss("contact", contact_id)


@bp.post("/companies/<int:company_id>/not-duplicates")
@require("customers", "edit")
def dismiss_companies(company_id: int) -> Any:
    return _dismiss("company", company_id)
