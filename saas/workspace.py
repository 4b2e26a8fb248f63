"""The tenant URL space: every tenant route lives under /<slug>/ and passes through here.

On every request: the slug names a live tenant, the signed-in person has an
active membership in it (else 404, so other workspaces cannot be probed), and
the tenant's real schema, from the registry, is bound for the request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, bindparam, select

from saas import accounts, audit, tenancy
from saas.billing import access as billing_access
from saas.extensions import db
from saas.models import Membership, Tenant, User
from saas.monitoring import tag_tenant
from saas.pages import render
from saas.permissions import role_for

bp = Blueprint("workspace", __name__, url_prefix="/<slug>")


@bp.url_value_preprocessor
def _pull_slug(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.slug = (values or {}).pop("slug", None)


@bp.url_defaults
def _add_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "slug" not in values and endpoint.startswith("workspace."):
        tenant = g.get("tenant")  # once: a page builds dozens of links
        if tenant is not None:
            values["slug"] = tenant.slug


# Built once (the statements, not their results): each request runs them with its own slug and user.
_TENANT = select(Tenant).where(Tenant.slug == bindparam("slug"), Tenant.status != "deleted")
# The tenant and the person's active membership in it, in one round trip.
_TENANT_AND_MEMBER = (
    select(Tenant, Membership)
    .outerjoin(
        Membership,
        and_(
            Membership.tenant_id == Tenant.id,
            Membership.user_id == bindparam("user_id"),
            Membership.is_active.is_(True),
        ),
    )
    .where(Tenant.slug == bindparam("slug"), Tenant.status != "deleted")
)
# The same, with the user the session names: Flask-Login's user load rides along (one round trip
# instead of two). Flask-Login still decides who is signed in (saas.accounts.load_user).
_TENANT_MEMBER_AND_USER = _TENANT_AND_MEMBER.add_columns(User).outerjoin(
    User, User.id == bindparam("user_id")
)


def _tenant_and_member() -> tuple[Tenant | None, Membership | None]:
    """The slug's tenant and the signed-in person's active membership in it (None when signed out)."""
    session_user = accounts.session_user_id(session.get("_user_id"))
    if session_user is not None and "_login_user" not in g:
        row = db.session.execute(_TENANT_MEMBER_AND_USER, {"slug": g.slug, "user_id": session_user}).first()
        if row is None:
            tenant, member = None, None
        else:
            tenant, member, user = row
            accounts.prefetch_user(session_user, user)
        if not current_user.is_authenticated:
            return tenant, None
        if current_user.id == session_user:
            return tenant, member
    if current_user.is_authenticated:  # signed in some other way than the session: ask for them
        row = db.session.execute(_TENANT_AND_MEMBER, {"slug": g.slug, "user_id": current_user.id}).first()
        return (row[0], row[1]) if row is not None else (None, None)
    return db.session.scalar(_TENANT, {"slug": g.slug}), None


@bp.before_request
def _bind_tenant():  # noqa: ANN202
    tenant, member = _tenant_and_member()
    if tenant is None:
        abort(404)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if member is None:
        abort(404)
    if tenant.status == "suspended":  # by a platform operator (saas.console); data kept, nothing served
        return render(
            "workspace/suspended.html",
            "_partials/error_message.html",
            403,
            status_code=403,
            message=_(
                "Its data is kept, but nobody can use it for now. Contact support to have it reactivated."
            ),
        )
    tenancy.bind(tenant.id, tenant.schema_name, tenant.slug)
    actor = audit.current_actor()
    audit.set_actor(audit.Actor(current_user.id, current_user.email, actor.ip, actor.request_id))
    tag_tenant(tenant.id)
    g.tenant = tenant
    g.membership = member
    g.role = role_for(member.role)
    refused = billing_access.refuse_when_read_only()  # billing: read-only workspaces take no writes
    if refused is not None:
        return refused
    return None


@bp.get("/")
def dashboard():  # noqa: ANN201
    from tenants.admin.services import members, pending_invitations

    return render("workspace/dashboard.html", members=members(), invitations=pending_invitations())


def _register_modules() -> None:
    from saas.backups.views import bp as backups_bp
    from saas.billing.views import bp as billing_bp
    from saas.compliance.views import bp as privacy_bp
    from tenants.admin.views import bp as admin_bp
    from tenants.api.pages import bp as api_tokens_bp
    from tenants.customers.views import bp as customers_bp
    from tenants.registry import set_nav_endpoint

    bp.register_blueprint(admin_bp)
    bp.register_blueprint(customers_bp)
    bp.register_blueprint(api_tokens_bp)
    bp.register_blueprint(billing_bp)
    bp.register_blueprint(backups_bp)
    bp.register_blueprint(privacy_bp)
    set_nav_endpoint("customers", "workspace.customers.contacts")


_register_modules()
