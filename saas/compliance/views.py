"""The privacy page of a workspace ("workspace.privacy"): find a person, export or erase their data,
whole-workspace export, retention rule, workspace deletion. A thin layer over the services.

Every route needs settings:edit (owners and admins); deleting the workspace needs the owner role.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import format_datetime, lazy_pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from saas import labels
from saas.compliance import account, services
from saas.compliance.registry import Subject
from saas.compliance.services import ComplianceError
from saas.pages import render
from saas.permissions import require
from tenants.registry import add_admin_item

bp = Blueprint("privacy", __name__, url_prefix="/privacy")

add_admin_item(("settings", "edit"), _l("Privacy"), "workspace.privacy.index", "bi-shield-lock")

# How the audit log page names this package's events (labels.py is the platform's; we add ours).
labels.AUDIT_ACTIONS.update(
    {
        "privacy_export": lazy_pgettext("audit", "Asked for a data export"),
        "privacy_export_ready": lazy_pgettext("audit", "Data export made"),
        "privacy_export_download": lazy_pgettext("audit", "Downloaded a data export"),
        "privacy_erase": lazy_pgettext("audit", "Erased personal data"),
        "tenant_deletion_requested": lazy_pgettext("audit", "Asked to delete the workspace"),
        "tenant_deletion_cancelled": lazy_pgettext("audit", "Cancelled the workspace's deletion"),
        "retention_purge": lazy_pgettext("audit", "Deleted old audit entries"),
    }
)
labels.AUDIT_ENTITIES.update(
    {
        "privacy_exports": _l("Data export"),
        "contact": _l("Contact"),
        "staff_user": _l("Team member"),
        "audit_log": _l("Audit log"),
        "erasures": _l("Erasure"),
        "privacy_settings": _l("Retention rule"),
        "consent_events": _l("Consent"),
    }
)

STATUS_LABELS: dict[str, Any] = {
    "queued": _l("Queued"),
    "running": _l("Being made"),
    "done": _l("Ready"),
    "failed": _l("Failed"),
    "expired": _l("Expired"),
}
KIND_LABELS: dict[str, Any] = {
    "contact": _l("Contact"),
    "staff_user": _l("Team member"),
    "portal_user": _l("Portal user"),
    "tenant": _l("Whole workspace"),
}


def _common() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "kind_labels": KIND_LABELS,
        "downloadable": services.is_downloadable,
        "confirm_word": services.CONFIRM_WORD,
    }


def _contacts_found(query: str) -> list[Any]:
    from tenants.customers import search
    from tenants.customers.people import Viewer

    if len(query) < 2:
        return []
    return search.search(Viewer.current(), query, limit=20).contacts


@bp.get("")
@require("settings", "edit")
def index():  # noqa: ANN201
    query = request.args.get("q", "").strip()[:100]
    return render(
        "compliance/index.html",
        query=query,
        contacts=_contacts_found(query) if query else [],
        members=account.members_matching(query) if query else [],
        exports=services.exports(),
        deletion=services.pending_deletion(),
        deletions=services.deletion_history(),
        rule=services.retention_settings(),
        grace_days=services.grace_days(),
        export_days=services.export_days(),
        is_owner=g.membership.role == "owner",
        errors={},
        **_common(),
    )


def _index_with_error(err: ComplianceError, status: int = 422, **values: Any):  # noqa: ANN202
    return render(
        "compliance/index.html",
        status=status,
        query="",
        contacts=[],
        members=[],
        exports=services.exports(),
        deletion=services.pending_deletion(),
        deletions=services.deletion_history(),
        rule=values.pop("rule", None) or services.retention_settings(),
        grace_days=services.grace_days(),
        export_days=services.export_days(),
        is_owner=g.membership.role == "owner",
        errors={err.field or "form": str(err)},
        **values,
        **_common(),
    )


# One person --------------------------------------------------------------------------------------


def _contact(contact_id: int) -> Subject:
    try:
        return services.subject("contact", contact_id)
    except LookupError:
        abort(404)


def _member(membership_id: int) -> Subject:
    try:
        return services.member_subject(membership_id)
    except LookupError:
        abort(404)


def _person_page(found: Subject, urls: dict[str, str], error: ComplianceError | None = None):  # noqa: ANN202
    ledger = []
    if found.kind == "contact":
        from tenants.customers.privacy import ledger as consent_ledger

        ledger = consent_ledger(found.id)
    return render(
        "compliance/person.html",
        status=422 if error else 200,
        person=found,
        urls=urls,
        ledger=ledger,
        erasure=services.erasure_of(found),
        exports=services.exports(found),
        errors={(error.field or "form"): str(error)} if error else {},
        **_common(),
    )


def _contact_urls(contact_id: int) -> dict[str, str]:
    return {
        "page": url_for(".contact", contact_id=contact_id),
        "export": url_for(".export_contact", contact_id=contact_id),
        "erase": url_for(".erase_contact", contact_id=contact_id),
        "record": url_for("workspace.customers.contact", contact_id=contact_id),
    }


def _member_urls(membership_id: int) -> dict[str, str]:
    return {
        "page": url_for(".member", membership_id=membership_id),
        "export": url_for(".export_member", membership_id=membership_id),
        "erase": url_for(".erase_member", membership_id=membership_id),
        "record": url_for("workspace.admin.people"),
    }


def _export(found: Subject, page: str):  # noqa: ANN202
    services.request_export(found, current_user.id)
    flash(_("The export is being made. Its download link appears below when it is ready."), "success")
    return redirect(page)


def _erase(found: Subject, urls: dict[str, str]):  # noqa: ANN202
    try:
        services.erase(found, request.form.get("confirm", ""), current_user.id)
    except ComplianceError as err:
        return _person_page(found, urls, err)
    flash(_("Their personal data was erased. The audit log keeps only the fact."), "success")
    return redirect(urls["page"] if found.kind == "contact" else url_for(".index"))


@bp.get("/contacts/<int:contact_id>")
@require("settings", "edit")
def contact(contact_id: int):  # noqa: ANN201
    return _person_page(_contact(contact_id), _contact_urls(contact_id))


@bp.post("/contacts/<int:contact_id>/export")
@require("settings", "edit")
def export_contact(contact_id: int):  # noqa: ANN201
    return _export(_contact(contact_id), url_for(".contact", contact_id=contact_id))


@bp.post("/contacts/<int:contact_id>/erase")
@require("settings", "edit")
def erase_contact(contact_id: int):  # noqa: ANN201
    return _erase(_contact(contact_id), _contact_urls(contact_id))


@bp.get("/members/<int:membership_id>")
@require("settings", "edit")
def member(membership_id: int):  # noqa: ANN201
    return _person_page(_member(membership_id), _member_urls(membership_id))


@bp.post("/members/<int:membership_id>/export")
@require("settings", "edit")
def export_member(membership_id: int):  # noqa: ANN201
    return _export(_member(membership_id), url_for(".member", membership_id=membership_id))


@bp.post("/members/<int:membership_id>/erase")
@require("settings", "edit")
def erase_member(membership_id: int):  # noqa: ANN201
    return _erase(_member(membership_id), _member_urls(membership_id))


# Exports -----------------------------------------------------------------------------------------


@bp.post("/exports/<int:export_id>/download")
@require("settings", "edit")
def download(export_id: int):  # noqa: ANN201
    try:
        url = services.download_url(export_id)
    except LookupError:
        abort(404)
    except ComplianceError as err:
        return render("errors/error.html", None, 410, status_code=410, message=str(err))
    return redirect(url)


@bp.post("/workspace/export")
@require("settings", "edit")
def export_workspace():  # noqa: ANN201
    services.request_tenant_export(current_user.id)
    flash(
        _("The workspace export is being made. Its download link appears below when it is ready."), "success"
    )
    return redirect(url_for(".index"))


# Retention and deletion --------------------------------------------------------------------------


@bp.post("/retention")
@require("settings", "edit")
def retention():  # noqa: ANN201
    try:
        services.save_retention(
            request.form.get("contact_months", "0"), request.form.get("audit_days", "0"), current_user.id
        )
    except ComplianceError as err:
        from saas.compliance.models import PrivacySettings

        typed = PrivacySettings(
            contact_months=request.form.get("contact_months", ""),
            audit_days=request.form.get("audit_days", ""),
        )
        return _index_with_error(err, rule=typed)
    flash(_("Retention rule saved."), "success")
    return redirect(url_for(".index"))


@bp.post("/workspace/delete")
@require("settings", "edit")
def delete_workspace():  # noqa: ANN201
    try:
        row = services.request_deletion(g.membership.role, current_user.id, request.form.get("confirm", ""))
    except ComplianceError as err:
        return _index_with_error(err, 403 if g.membership.role != "owner" else 422)
    flash(
        _(
            "The workspace will be deleted on %(date)s unless an owner cancels.",
            date=format_datetime(row.due_at, "medium"),
        ),
        "warning",
    )
    return redirect(url_for(".index"))


@bp.post("/workspace/cancel-deletion")
@require("settings", "edit")
def cancel_deletion():  # noqa: ANN201
    try:
        services.cancel_deletion(g.membership.role, current_user.id)
    except ComplianceError as err:
        flash(str(err), "danger")
        return redirect(url_for(".index"))
    flash(_("The deletion is cancelled. The workspace stays."), "success")
    return redirect(url_for(".index"))
