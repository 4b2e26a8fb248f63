"""The platform console's pages (blueprint "console" at /console). Anyone but a platform admin gets 404."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from saas import audit
from saas.console import services
from saas.console.forms import StatusForm
from saas.pages import render

bp = Blueprint("console", __name__, url_prefix="/console")


@bp.before_request
def _operators_only() -> None:
    # 404, not 403: the console is not there for anyone else (signed in or not).
    if not current_user.is_authenticated or not current_user.is_platform_admin:
        abort(404)
    actor = audit.current_actor()
    audit.set_actor(audit.Actor(current_user.id, current_user.email, actor.ip, actor.request_id))


@bp.context_processor
def _helpers() -> dict[str, Any]:
    try:  # the billing area's words for its codes, when it is installed
        from saas.billing.views import PLAN_LABELS, STATE_LABELS
    except ImportError:
        PLAN_LABELS, STATE_LABELS = {}, {}  # noqa: N806
    return {
        "human_size": services.human_size,
        "status_labels": services.STATUS_LABELS,
        "plan_labels": PLAN_LABELS,
        "billing_labels": STATE_LABELS,
    }


@bp.get("/")
def index() -> Any:
    q = request.args.get("q", "")
    status = request.args.get("status", "")
    page = services.tenant_page(q, status, request.args.get("after", type=int))
    return render(
        "console/index.html",
        "console/_rows.html",
        page=page,
        q=q,
        status_filter=status,
        statuses=services.STATUSES,
    )


@bp.route("/tenants/<int:tenant_id>/<any(suspend, reactivate):action>", methods=["GET", "POST"])
def change_status(tenant_id: int, action: str) -> Any:
    tenant = services.get_tenant(tenant_id)
    if tenant is None:
        abort(404)
    form = StatusForm()
    if form.validate_on_submit():
        if action == "suspend" and (form.confirm.data or "").strip() != tenant.slug:
            form.confirm.errors = [_("Type %(slug)s to confirm.", slug=tenant.slug)]
        else:
            try:
                change = services.suspend if action == "suspend" else services.reactivate
                change(tenant, current_user, form.reason.data or "")
            except services.ConsoleError as err:
                flash(str(err), "danger")
            else:
                if action == "suspend":
                    flash(_("%(name)s is suspended.", name=tenant.name), "success")
                else:
                    flash(_("%(name)s is active again.", name=tenant.name), "success")
            return redirect(url_for(".index", q=tenant.slug))
    return render(
        "console/confirm.html",
        form=form,
        tenant=tenant,
        action=action,
        status=422 if form.errors else 200,
    )
