"""The platform console's work: the tenant list with its figures, suspending and reactivating.

Platform operators are users with `is_platform_admin` (shared schema); they need no membership in a
tenant. The list reads the shared registry, plus two read-only aggregates over the page's tenant
schemas (storage): the only place that looks across schemas, and only at sizes, never at rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, text

from saas import audit, tenancy
from saas.accounts import user_by_email
from saas.extensions import db
from saas.models import Membership, Tenant, User

PAGE_SIZE = 50
STATUSES = ("active", "suspended", "deleted")
STATUS_LABELS: dict[str, Any] = {
    "active": _l("Active"),
    "suspended": _l("Suspended"),
    "deleted": _l("Deleted"),
}
log = logging.getLogger("crm.platform")


class ConsoleError(ValueError):
    """A refused operator action; the message says why (translated)."""


@dataclass
class TenantRow:
    tenant: Tenant
    members: int = 0
    database_bytes: int | None = None  # tables, their indexes and TOAST of the tenant's schema
    file_bytes: int | None = None  # the sizes of the tenant's attachments
    # From the billing and backups areas when they are installed (else None, shown as "—"):
    billing: dict[str, Any] | None = None  # {plan, state, seats_used, seats_paid, trial_ends_at}
    backup: datetime | None = None  # when the newest good backup was taken


@dataclass
class TenantPage:
    rows: list[TenantRow]
    next_cursor: int | None
    billing_known: bool  # False: saas.billing.services.summaries is not available (shown as "—")
    backups_known: bool


def tenant_page(
    query: str = "", status: str = "", after: int | None = None, size: int = PAGE_SIZE
) -> TenantPage:
    """Tenants, newest first, cut by keyset on id; `query` matches name or slug (case-insensitive)."""
    stmt = select(Tenant).order_by(Tenant.id.desc()).limit(size + 1)
    query = query.strip()[:100]
    if query:
        stmt = stmt.where(
            or_(Tenant.name.icontains(query, autoescape=True), Tenant.slug.icontains(query, autoescape=True))
        )
    if status in STATUSES:
        stmt = stmt.where(Tenant.status == status)
    if after is not None:
        stmt = stmt.where(Tenant.id < after)
    tenants = list(db.session.scalars(stmt))
    more = len(tenants) > size
    tenants = tenants[:size]
    ids = [t.id for t in tenants]
    members = _members(ids)
    database = database_sizes([t.schema_name for t in tenants])
    files = file_sizes(tenants)
    billing = _optional("saas.billing.services", "summaries", ids)
    backups = _optional("saas.backups.services", "last_good", ids)
    rows = [
        TenantRow(
            t,
            members.get(t.id, 0),
            database.get(t.schema_name),
            files.get(t.id),
            (billing or {}).get(t.id),
            (backups or {}).get(t.id),
        )
        for t in tenants
    ]
    return TenantPage(rows, tenants[-1].id if more else None, billing is not None, backups is not None)


def _optional(module: str, name: str, ids: list[int]) -> dict[int, Any] | None:
    """A figure from another area's service, or None while that area is not installed."""
    import importlib

    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return dict(fn(ids)) if ids else {}


def _members(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = db.session.execute(
        select(Membership.tenant_id, func.count())
        .where(Membership.tenant_id.in_(ids), Membership.is_active.is_(True))
        .group_by(Membership.tenant_id)
    )
    return {tenant_id: count for tenant_id, count in rows}


def database_sizes(schemas: list[str]) -> dict[str, int]:
    """Bytes on disk per schema (tables with their indexes and TOAST), in one query for all of them."""
    schemas = [s for s in schemas if tenancy.SCHEMA_RE.match(s)]
    if not schemas:
        return {}
    rows = db.session.execute(
        text(
            "select n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(:schemas) and c.relkind in ('r', 'm') group by n.nspname"
        ),
        {"schemas": schemas},
    )
    return {name: int(size) for name, size in rows}


def file_sizes(tenants: list[Tenant]) -> dict[int, int]:
    """Bytes of attachments per tenant (the sum of their recorded sizes), in two queries for all.

    Only schemas that have an attachments table take part (a tenant behind on migrations may not).
    Schema names come from the registry and are checked, never from input.
    """
    schemas = {t.schema_name: t.id for t in tenants if tenancy.SCHEMA_RE.match(t.schema_name)}
    if not schemas:
        return {}
    present = db.session.scalars(
        text(
            "select s from unnest(cast(:schemas as text[])) s where to_regclass(format('%I.attachments', s)) is not null"
        ),
        {"schemas": list(schemas)},
    ).all()
    if not present:
        return {}
    parts = " union all ".join(
        f'select {schemas[s]}::bigint, coalesce(sum(size), 0)::bigint from "{s}".attachments' for s in present
    )
    return {tenant_id: int(size) for tenant_id, size in db.session.execute(text(parts))}


def human_size(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{format_decimal(round(size, 1 if unit != 'B' else 0))} {unit}"
        size /= 1024
    return str(n)  # not reached


def get_tenant(tenant_id: int) -> Tenant | None:
    return db.session.get(Tenant, tenant_id)


def _set_status(tenant: Tenant, operator: User, new: str, action: str, reason: str) -> None:
    old = tenant.status
    tenant.status = new
    # The tenant's own audit log, in the same transaction as the change: its admins see who and why.
    # (The actor is the operator, bound by the console's views.)
    with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
        audit.record(action, "tenant", tenant.id, changes={"status": [old, new]}, summary=reason)
    db.session.commit()
    log.info("%s %s (id %s) by %s: %s", action, tenant.slug, tenant.id, operator.email, reason or "-")


def suspend(tenant: Tenant, operator: User, reason: str = "") -> None:
    """Stop serving a tenant: its members see a "suspended" page, its API tokens stop. Data is kept."""
    if tenant.status != "active":
        raise ConsoleError(_("Only an active workspace can be suspended."))
    _set_status(tenant, operator, "suspended", "workspace_suspended", reason.strip()[:300])


def reactivate(tenant: Tenant, operator: User, reason: str = "") -> None:
    if tenant.status != "suspended":
        raise ConsoleError(_("Only a suspended workspace can be reactivated."))
    _set_status(tenant, operator, "active", "workspace_reactivated", reason.strip()[:300])
    from workers.context import release_held_jobs

    release_held_jobs(tenant.id)  # its mail and imports held while it was suspended


def set_platform_admin(email: str, on: bool) -> User:
    """Make an existing account a platform operator, or no longer one (`crm platform-admin`)."""
    user = user_by_email(email)
    if user is None:
        raise ConsoleError(f"no account with the email {email}")
    user.is_platform_admin = on
    db.session.commit()
    log.info("platform admin %s: %s", "granted to" if on else "revoked from", user.email)
    return user
