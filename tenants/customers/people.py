"""Who can own, be assigned and be shown: the bound tenant's members (shared schema)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import g, has_request_context
from flask_babel import gettext as _
from sqlalchemy import bindparam, select

from saas.extensions import db
from saas.models import Membership, User
from saas.tenancy import require_tenant
from tenants.customers.models import TeamMember


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the user and the visibility of their role (own / team / all).

    Services take a Viewer instead of reading the request, so pages, the API and
    jobs apply the same rule.
    """

    user_id: int
    visibility: str = "own"

    @classmethod
    def current(cls) -> Viewer:
        """The signed-in member of the workspace of this request."""
        from flask import g
        from flask_login import current_user

        role = g.get("role")
        return cls(int(current_user.id), getattr(role, "visibility", "own") or "own")


_MEMBER_ROWS = (  # built once, run with each tenant's id
    select(User.id, User.name, Membership.is_active)
    .join(Membership, Membership.user_id == User.id)
    .where(Membership.tenant_id == bindparam("tenant_id"))
    .order_by(User.name, User.id)
)


def _member_rows() -> list[tuple[int, str, bool]]:
    """(user id, name, active) of the bound tenant's members, by name; once per request, as a page
    asks for them several times (owner names of a list, owner choices of its filters, ...)."""
    tenant_id = require_tenant().id
    cache = g.setdefault("_member_rows", {}) if has_request_context() else {}
    if tenant_id not in cache:
        rows = db.session.execute(_MEMBER_ROWS, {"tenant_id": tenant_id})
        cache[tenant_id] = [(uid, name, active) for uid, name, active in rows]
    return cache[tenant_id]


def members(active_only: bool = True) -> list[tuple[int, str]]:
    """(user id, name) of the bound tenant's members, by name."""
    return [(uid, name) for uid, name, active in _member_rows() if active or not active_only]


def is_active_member(user_id: int) -> bool:
    return (
        db.session.scalar(
            select(Membership.id).where(
                Membership.tenant_id == require_tenant().id,
                Membership.user_id == user_id,
                Membership.is_active.is_(True),
            )
        )
        is not None
    )


def names(user_ids: Iterable[int | None]) -> dict[int, str]:
    """Names of these users, as far as they are (or were) members of the bound tenant."""
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return {uid: name for uid, name, _active in _member_rows() if uid in ids}


def owner_choices(blank: str | None = None) -> list[tuple[str, str]]:
    choices = [(str(uid), name) for uid, name in members()]
    return [("", blank if blank is not None else _("Nobody")), *choices]


def teammates(user_id: int) -> list[int]:
    """Everyone who shares a team with user_id (themselves included)."""
    mine = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    ids = set(db.session.scalars(select(TeamMember.user_id).where(TeamMember.team_id.in_(mine))))
    return sorted(ids | {user_id})
