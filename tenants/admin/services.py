"""Workspace administration: members, invitations, roles, settings, audit queries.

Functions take plain values and the bound tenant; views, API and jobs all call these.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from saas import accounts, audit, i18n
from saas.accounts import AccountError
from saas.billing import services as billing
from saas.extensions import db
from saas.models import Invitation, Membership, Tenant, User
from saas.permissions import ACTIONS, BUILTIN_ROLES, MODULES, role_for
from saas.tenancy import require_tenant
from tenants.admin.models import AuditEvent, Role

CURRENCIES = ("USD", "EUR", "GBP", "CNY", "HKD", "TWD", "THB", "SGD", "JPY", "MYR", "AUD")


def members() -> list[tuple[Membership, User]]:
    tenant = require_tenant()
    rows = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant.id)
        .order_by(Membership.is_active.desc(), User.name)
    )
    return [(m, u) for m, u in rows]


def membership(membership_id: int) -> Membership:
    """A membership of the bound tenant, or LookupError (a forged id from elsewhere is 'not found')."""
    row = db.session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.tenant_id == require_tenant().id)
    )
    if row is None:
        raise LookupError(membership_id)
    return row


def role_choices() -> list[tuple[str, str]]:
    choices = [(key, str(r.name)) for key, r in BUILTIN_ROLES.items()]
    choices += [(f"custom:{r.id}", r.name) for r in db.session.scalars(select(Role).order_by(Role.name))]
    return choices


def _check_role_key(key: str) -> None:
    if key not in dict(role_choices()):
        raise AccountError(_("Choose a role from the list."), "role")


def _active_owners(tenant_id: int) -> int:
    return db.session.scalar(
        select(func.count()).where(
            Membership.tenant_id == tenant_id, Membership.role == "owner", Membership.is_active.is_(True)
        )
    )


def _guard_owner_change(actor_role: str, target: Membership, new_role: str | None) -> None:
    """Only owners touch owners; the last active owner stays an owner."""
    if (target.role == "owner" or new_role == "owner") and actor_role != "owner":
        raise AccountError(_("Only an owner can give or take away the owner role."))
    leaving_owner = target.role == "owner" and target.is_active and (new_role is None or new_role != "owner")
    if leaving_owner and _active_owners(target.tenant_id) <= 1:
        raise AccountError(_("A workspace needs at least one owner. Make someone else an owner first."))


def change_role(actor_role: str, membership_id: int, new_role: str) -> Membership:
    target = membership(membership_id)
    _check_role_key(new_role)
    if target.role == new_role:
        return target
    _guard_owner_change(actor_role, target, new_role)
    before = target.role
    target.role = new_role
    user = db.session.get(User, target.user_id)
    audit.record("role_change", "membership", target.id, {"role": [before, new_role]}, summary=user.email)
    db.session.commit()
    return target


def set_active(actor_role: str, membership_id: int, active: bool) -> Membership:
    target = membership(membership_id)
    if target.is_active == active:
        return target
    if not active:
        _guard_owner_change(actor_role, target, None)
    else:
        billing.check_seat_available(target.tenant_id)  # a seat must be paid for (billing on)
    target.is_active = active
    target.deactivated_at = None if active else datetime.now(UTC)
    user = db.session.get(User, target.user_id)
    audit.record(
        "reactivate" if active else "deactivate",
        "membership",
        target.id,
        {"is_active": [not active, active]},
        summary=user.email,
    )
    billing.seats_changed(target.tenant_id)
    db.session.commit()
    return target


def pending_invitations() -> list[Invitation]:
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.tenant_id == require_tenant().id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def invite(actor_role: str, inviter: User, email: str, role: str) -> Invitation:
    from saas.mail import queue_email

    bound = require_tenant()
    email = accounts.normalize_email(email)
    _check_role_key(role)
    if role == "owner" and actor_role != "owner":
        raise AccountError(_("Only an owner can invite another owner."), "role")
    already = db.session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == bound.id, func.lower(User.email) == email)
    )
    if already is not None:
        raise AccountError(_("This person is already a member of the workspace."), "email")
    billing.check_seat_available(bound.id)  # past the paid seats: add seats first (billing on)
    raw, digest = accounts.new_token()
    days = current_app.config["INVITE_TOKEN_DAYS"]
    inv = Invitation(
        tenant_id=bound.id,
        email=email,
        role=role,
        token_hash=digest,
        invited_by_id=inviter.id,
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    db.session.add(inv)
    db.session.flush()
    tenant = db.session.get(Tenant, bound.id)
    link = url_for("auth.accept_invitation", token=raw, _external=True)
    queue_email(
        email,
        _("%(name)s invited you to %(workspace)s", name=inviter.name, workspace=tenant.name),
        "invite",
        tenant_id=bound.id,
        inviter=inviter,
        tenant=tenant,
        link=link,
        days=days,
    )
    audit.record(
        "invite", "invitation", inv.id, {"email": [None, email], "role": [None, role]}, summary=email
    )
    db.session.commit()
    return inv


def revoke_invitation(invitation_id: int) -> None:
    inv = db.session.scalar(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.tenant_id == require_tenant().id)
    )
    if inv is None or inv.accepted_at is not None:
        raise LookupError(invitation_id)
    inv.revoked_at = datetime.now(UTC)
    audit.record("invite_revoked", "invitation", inv.id, summary=inv.email)
    billing.seats_changed(inv.tenant_id)
    db.session.commit()


def invitation_by_token(raw: str) -> Invitation:
    """The invitation behind a link, or AccountError saying why it cannot be used."""
    inv = db.session.scalar(select(Invitation).where(Invitation.token_hash == accounts._digest(raw)))
    if inv is None or inv.revoked_at is not None:
        raise AccountError(_("This invitation is not valid. Ask for a new one."))
    if inv.accepted_at is not None:
        raise AccountError(_("This invitation has already been used."))
    if inv.expires_at <= datetime.now(UTC):
        raise AccountError(_("This invitation has expired. Ask for a new one."))
    return inv


def accept_invitation(raw: str, user: User | None, name: str = "", password: str = "") -> tuple[Tenant, User]:
    """Join the workspace, as the signed-in person or as a new account for the invited address."""
    from saas import tenancy

    inv = db.session.scalar(
        select(Invitation).where(Invitation.token_hash == accounts._digest(raw)).with_for_update()
    )
    if inv is None:
        raise AccountError(_("This invitation is not valid. Ask for a new one."))
    invitation_by_token(raw)  # same checks, same messages
    if user is None:
        if accounts.user_by_email(inv.email) is not None:
            raise AccountError(_("An account with this email exists. Sign in to accept."))
        problem = accounts.password_problem(password, inv.email)
        if problem:
            raise AccountError(problem, "password")
        if not name.strip():
            raise AccountError(_("Enter your name."), "name")
        user = User(
            email=inv.email,
            name=name.strip(),
            locale=i18n.request_locale(),  # the language the invitation was accepted in
            password_hash=accounts.hash_password(password),
            email_verified_at=datetime.now(UTC),  # the link reached this inbox
        )
        db.session.add(user)
        db.session.flush()
    existing = db.session.scalar(
        select(Membership).where(Membership.tenant_id == inv.tenant_id, Membership.user_id == user.id)
    )
    if existing is not None:
        raise AccountError(_("You are already a member of this workspace."))
    db.session.add(Membership(tenant_id=inv.tenant_id, user_id=user.id, role=inv.role))
    inv.accepted_at = datetime.now(UTC)
    user.last_tenant_id = inv.tenant_id
    tenant = db.session.get(Tenant, inv.tenant_id)
    token = audit.set_actor(
        audit.Actor(user.id, user.email, audit.current_actor().ip, audit.current_actor().request_id)
    )
    try:
        with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
            audit.record("invite_accepted", "invitation", inv.id, summary=user.email)
    finally:
        audit._actor.reset(token)
    billing.seats_changed(tenant.id)
    db.session.commit()
    return tenant, user


# Custom roles ---------------------------------------------------------------


def custom_roles() -> list[Role]:
    return list(db.session.scalars(select(Role).order_by(Role.name)))


def get_role(role_id: int) -> Role:
    role = db.session.get(Role, role_id)
    if role is None:
        raise LookupError(role_id)
    return role


def clean_permissions(raw: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        m: sorted(set(a) & set(ACTIONS)) for m, a in raw.items() if m in MODULES and set(a) & set(ACTIONS)
    }


def save_role(
    role_id: int | None, name: str, description: str, visibility: str, perms: dict[str, list[str]]
) -> Role:
    name = name.strip()
    if not name:
        raise AccountError(_("Enter a name."), "name")
    if visibility not in ("own", "team", "all"):
        raise AccountError(_("Choose whose records the role sees."), "visibility")
    if name.lower() in {str(r.name).lower() for r in BUILTIN_ROLES.values()} | set(BUILTIN_ROLES):
        raise AccountError(_("A built-in role has this name."), "name")
    clash = db.session.scalar(
        select(Role).where(func.lower(Role.name) == name.lower(), Role.id != (role_id or 0))
    )
    if clash is not None:
        raise AccountError(_("Another role has this name."), "name")
    role = get_role(role_id) if role_id else Role()
    role.name, role.description, role.visibility = name, description.strip(), visibility
    role.permissions = clean_permissions(perms)
    if role_id is None:
        db.session.add(role)
    db.session.commit()
    return role


def delete_role(role_id: int) -> None:
    role = get_role(role_id)
    in_use = db.session.scalar(
        select(func.count()).where(
            Membership.tenant_id == require_tenant().id, Membership.role == f"custom:{role.id}"
        )
    )
    if in_use:
        raise AccountError(_("People still have this role. Give them another role first."))
    db.session.delete(role)
    db.session.commit()


def role_label(key: str) -> str:
    return str(role_for(key).name)


# Settings -------------------------------------------------------------------


def timezones() -> list[str]:
    return sorted(available_timezones())


def update_settings(name: str, timezone: str, currency: str) -> Tenant:
    """Tenant settings live on the registry row; record the change in the tenant's audit log."""
    tenant = db.session.get(Tenant, require_tenant().id)
    if not name.strip():
        raise AccountError(_("Enter a name."), "name")
    if timezone not in available_timezones():
        raise AccountError(_("Choose a time zone from the list."), "timezone")
    if currency not in CURRENCIES:
        raise AccountError(_("Choose a currency from the list."), "currency")
    changes = {
        k: [getattr(tenant, k), v]
        for k, v in (("name", name.strip()), ("timezone", timezone), ("currency", currency))
        if getattr(tenant, k) != v
    }
    for key, (_before, after) in changes.items():
        setattr(tenant, key, after)
    if changes:
        audit.record("update", "settings", tenant.id, changes)
    db.session.commit()
    return tenant


# Audit log ------------------------------------------------------------------


def audit_page(
    filters: dict[str, Any], before_id: int | None, size: int = 50
) -> tuple[list[AuditEvent], int | None]:
    """Newest first, keyset-paginated on id; returns the page and the id to continue before."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(size + 1)
    if before_id:
        q = q.where(AuditEvent.id < before_id)
    if filters.get("action"):
        q = q.where(AuditEvent.action == filters["action"])
    if filters.get("entity"):
        q = q.where(AuditEvent.entity == filters["entity"])
    if filters.get("user"):
        q = q.where(AuditEvent.user_email.ilike(f"%{filters['user']}%"))
    if filters.get("since"):
        q = q.where(AuditEvent.at >= filters["since"])
    if filters.get("until"):
        q = q.where(AuditEvent.at < filters["until"] + timedelta(days=1))
    rows = list(db.session.scalars(q))
    more = rows[size].id if len(rows) > size else None
    return rows[:size], (rows[size - 1].id if more else None)


def audit_facets() -> tuple[list[str], list[str]]:
    actions = list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    entities = list(db.session.scalars(select(AuditEvent.entity).distinct().order_by(AuditEvent.entity)))
    return actions, entities
