"""The platform's own part of a staff user's data in a workspace: their account, membership, API
tokens and what the audit log says they did. Registered like any module's exporter and eraser.

Erasing a staff user in a workspace:
- their membership of this workspace, invitations to their address here and their API tokens here
  are deleted (they lose access; other members see no name for what they did);
- the audit log keeps their entries (user id, what, when) without their email address, which is
  also replaced wherever it appears in the log's summaries and values;
- the shared account (users row) is anonymised only when they belong to no other workspace
  (name and email replaced, password unusable, sessions ended, outgoing mail and links deleted);
  otherwise it stays, because it is also theirs elsewhere. The summary says which it was.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from saas.compliance import registry
from saas.compliance.tools import plain, scrub_text
from saas.extensions import db
from saas.models import EmailOutbox, Invitation, Membership, OneTimeToken, User
from saas.tenancy import require_tenant

NO_SYNC = {"synchronize_session": False}


def member(user_id: int) -> tuple[Membership, User] | None:
    """The membership (active or not) and account of a user in the bound tenant."""
    row = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == require_tenant().id, Membership.user_id == user_id)
    ).first()
    return (row[0], row[1]) if row else None


def resolve_staff(user_id: int) -> registry.Subject | None:
    found = member(user_id)
    if found is None:
        return None
    _m, user = found
    return registry.Subject("staff_user", user.id, user.email, user.name)


def membership_subject(membership_id: int) -> registry.Subject:
    """The staff subject behind a membership of the bound tenant (LookupError for any other id)."""
    user_id = db.session.scalar(
        select(Membership.user_id).where(
            Membership.id == membership_id, Membership.tenant_id == require_tenant().id
        )
    )
    subject = resolve_staff(user_id) if user_id else None
    if subject is None:
        raise LookupError(membership_id)
    return subject


def members_matching(query: str, limit: int = 20) -> list[tuple[Membership, User]]:
    """Members of the bound tenant whose email or name contains `query`."""
    text = (query or "").strip().lower()
    if not text:
        return []
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.tenant_id == require_tenant().id,
            (func.lower(User.email).like(pattern)) | (func.lower(User.name).like(pattern)),
        )
        .order_by(User.name, User.id)
        .limit(limit)
    )
    return [(m, u) for m, u in rows]


def export(subject: registry.Subject) -> dict[str, Any] | None:
    from tenants.admin.models import AuditEvent
    from tenants.api.models import ApiToken

    if subject.kind != "staff_user":
        return None
    found = member(subject.id)
    if found is None:
        return None
    membership, user = found
    entries = db.session.scalars(
        select(AuditEvent).where(AuditEvent.user_id == user.id).order_by(AuditEvent.id)
    )
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    invited = db.session.scalar(
        select(func.count()).where(
            Invitation.tenant_id == membership.tenant_id, Invitation.invited_by_id == user.id
        )
    )
    data = {
        "account": {
            "id": user.id,
            "name": user.name,
            "email": user.email,
            "locale": user.locale,
            "email_verified_at": plain(user.email_verified_at),
            "created_at": plain(user.created_at),
        },
        "membership": {
            "role": membership.role,
            "is_active": membership.is_active,
            "created_at": plain(membership.created_at),
            "deactivated_at": plain(membership.deactivated_at),
        },
        # What they did, without the values (those are the workspace's records, often about others).
        "audit_entries": [
            {
                "at": plain(e.at),
                "action": e.action,
                "entity": e.entity,
                "entity_id": e.entity_id,
                "ip": e.ip,
                "summary": e.summary,
            }
            for e in entries
        ],
        "api_tokens": [
            {
                "name": t.name,
                "prefix": t.prefix,
                "created_at": plain(t.created_at),
                "last_used_at": plain(t.last_used_at),
                "expires_at": plain(t.expires_at),
                "revoked_at": plain(t.revoked_at),
            }
            for t in tokens
        ],
        "invitations_sent": invited,
    }
    return {"json": data}


def erase(subject: registry.Subject) -> dict[str, Any] | None:
    from tenants.admin.models import AuditEvent
    from tenants.api.models import ApiToken

    if subject.kind != "staff_user":
        return None
    found = member(subject.id)
    if found is None:
        return None
    membership, user = found
    tenant_id = membership.tenant_id
    email = user.email
    counts: dict[str, Any] = {}
    counts["api_tokens_deleted"] = db.session.execute(
        delete(ApiToken).where(ApiToken.user_id == user.id), execution_options=NO_SYNC
    ).rowcount
    audit = AuditEvent.__table__
    counts["audit_entries_unnamed"] = db.session.execute(
        update(audit)
        .where(audit.c.user_id == user.id, audit.c.user_email.is_not(None))
        .values(user_email=None)
    ).rowcount
    counts["audit_entries_scrubbed"] = scrub_text([email])
    counts["invitations_deleted"] = db.session.execute(
        delete(Invitation).where(
            Invitation.tenant_id == tenant_id, func.lower(Invitation.email) == email.lower()
        ),
        execution_options=NO_SYNC,
    ).rowcount
    db.session.execute(delete(Membership).where(Membership.id == membership.id), execution_options=NO_SYNC)
    counts["membership_deleted"] = 1
    elsewhere = db.session.scalar(
        select(func.count()).where(Membership.user_id == user.id, Membership.tenant_id != tenant_id)
    )
    if elsewhere:
        counts["account"] = "kept: member of other workspaces"
        counts["emails_deleted"] = db.session.execute(
            delete(EmailOutbox).where(EmailOutbox.tenant_id == tenant_id, EmailOutbox.to_addr == email),
            execution_options=NO_SYNC,
        ).rowcount
    else:
        counts["account"] = "anonymised"
        counts["emails_deleted"] = db.session.execute(
            delete(EmailOutbox).where(EmailOutbox.to_addr == email), execution_options=NO_SYNC
        ).rowcount
        db.session.execute(
            delete(OneTimeToken).where(OneTimeToken.user_id == user.id), execution_options=NO_SYNC
        )
        db.session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                name="Erased user",
                email=f"erased-{user.id}@erased.invalid",
                password_hash="!",  # no password hashes to this: nobody can sign in
                email_verified_at=None,
                locale=None,
                last_tenant_id=None,
                session_version=User.session_version + 1,  # every session ends
            ),
            execution_options=NO_SYNC,
        )
    db.session.expire_all()
    return counts


registry.register("account", export, erase)
registry.register_kind("staff_user", resolve_staff)
