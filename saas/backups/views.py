"""The backups page of a workspace: "workspace.backups" at /<slug>/admin/backups.

Seeing the list needs ("settings", "view"); "Back up now" and the download links (a backup holds all
of the workspace's data) need ("settings", "edit"). Restoring is an operator's job (`crm restore`).
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from saas.backups import services
from saas.pages import render, wants_partial
from saas.permissions import can, require
from tenants.registry import add_admin_item

bp = Blueprint("backups", __name__, url_prefix="/admin/backups")
add_admin_item(("settings", "view"), _l("Backups"), "workspace.backups.index", "bi-archive")

KIND_LABELS = {"daily": _l("Daily"), "weekly": _l("Weekly"), "monthly": _l("Monthly"), "manual": _l("Manual")}
STATUS_LABELS = {
    "queued": _l("Waiting"),
    "running": _l("Backing up"),
    "verifying": _l("Checking by a test restore"),
    "good": _l("Good"),
    "failed": _l("Failed"),
}


@bp.get("")
@require("settings", "view")
def index():  # noqa: ANN201
    backups = services.list_backups(g.tenant.id)
    active = services.has_active(backups)
    links = {}
    if can("settings", "edit"):
        links = {b.id: services.download_url(b, g.tenant.slug) for b in backups if b.status == "good"}
    return render(
        "backups/index.html",
        "backups/_rows.html",
        286 if wants_partial() and not active else 200,  # 286: htmx stops polling once nothing runs
        backups=backups,
        links=links,
        active=active,
        kind_labels=KIND_LABELS,
        status_labels=STATUS_LABELS,
        link_minutes=services.LINK_SECONDS // 60,
    )


@bp.post("/run")
@require("settings", "edit")
def run():  # noqa: ANN201
    backup = services.request_backup(g.tenant.id, "manual", current_user.id)
    services.enqueue_backup(backup)
    flash(_("Backup started. It is listed as good once a test restore of it has matched."), "success")
    return redirect(url_for(".index"))
