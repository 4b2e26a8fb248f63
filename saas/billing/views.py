"""The billing page of a workspace: "workspace.billing" at /<slug>/billing.

Seeing it needs ("billing", "view"); starting a subscription, opening Stripe's portal and changing
seats need ("billing", "edit"). These stay open while the workspace is read-only: paying is the way out.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from saas.billing import services
from saas.billing.services import BillingError
from saas.extensions import db
from saas.pages import render
from saas.permissions import require
from tenants.registry import add_admin_item

bp = Blueprint("billing", __name__, url_prefix="/billing")
add_admin_item(("billing", "view"), _l("Billing"), "workspace.billing.index", "bi-credit-card")

STATE_LABELS = {
    "trialing": _l("Free trial"),
    "active": _l("Active"),
    "past_due": _l("Payment overdue"),
    "read_only": _l("Read-only"),
    "cancelled": _l("Cancelled"),
}
PLAN_LABELS = {"monthly": _l("Per seat, monthly"), "yearly": _l("Per seat, yearly")}


@bp.get("")
@require("billing", "view")
def index():  # noqa: ANN201
    tenant_id = g.tenant.id
    checkout = request.args.get("checkout")
    if checkout == "success":
        flash(_("Thank you! Your subscription starts as soon as Stripe confirms the payment."), "success")
    elif checkout == "cancelled":
        flash(_("Checkout was cancelled: nothing was charged."), "info")
    return render(
        "billing/index.html",
        billing=services.status(tenant_id),
        seats_used=services.active_seats(tenant_id),
        seats_invited=services.open_invitations(tenant_id),
        ledger=services.ledger(tenant_id),
        ledger_days=services.LEDGER_DAYS,
        state_labels=STATE_LABELS,
        plan_labels=PLAN_LABELS,
    )


def _refused(err: BillingError):  # noqa: ANN202
    db.session.rollback()
    flash(str(err), "danger")
    return redirect(url_for(".index"))


@bp.post("/checkout")
@require("billing", "edit")
def checkout():  # noqa: ANN201
    back = url_for(".index", _external=True)
    try:
        url = services.start_checkout(
            g.tenant.id,
            request.form.get("plan", ""),
            current_user.email,
            success_url=f"{back}?checkout=success",
            cancel_url=f"{back}?checkout=cancelled",
        )
    except BillingError as err:
        return _refused(err)
    return redirect(url, 303)


@bp.post("/portal")
@require("billing", "edit")
def portal():  # noqa: ANN201
    try:
        url = services.portal_url(g.tenant.id, url_for(".index", _external=True))
    except BillingError as err:
        return _refused(err)
    return redirect(url, 303)


@bp.post("/seats")
@require("billing", "edit")
def seats():  # noqa: ANN201
    raw = request.form.get("seats", "").strip()
    try:
        if not raw.isdigit():
            raise BillingError(_("Enter the number of seats as a whole number."), "seats")
        services.change_seats(g.tenant.id, int(raw))
    except BillingError as err:
        return _refused(err)
    flash(
        _("Seats changed to %(n)d. Stripe prorates the difference on the next invoice.", n=int(raw)),
        "success",
    )
    return redirect(url_for(".index"))
