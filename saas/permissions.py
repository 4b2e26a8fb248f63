"""Roles and permissions: one matrix of module x action, one check used by every route."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import abort, g
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

MODULES: dict[str, Any] = {
    "customers": _l("Customers"),
    "sales": _l("Sales"),
    "service": _l("Service"),
    "marketing": _l("Marketing"),
    "automation": _l("Automation"),
    "reports": _l("Reports"),
    "users": _l("Users and roles"),
    "audit": _l("Audit log"),
    "settings": _l("Settings"),
    "billing": _l("Billing"),
}
ACTIONS: dict[str, Any] = {
    "view": _l("View"),
    "create": _l("Create"),
    "edit": _l("Edit"),
    "delete": _l("Delete"),
    "export": _l("Export"),
}
CRM_MODULES = ("customers", "sales", "service", "marketing", "automation", "reports")
ADMIN_MODULES = ("users", "audit", "settings", "billing")
ALL = tuple(ACTIONS)


def _grant(modules: tuple[str, ...], actions: tuple[str, ...]) -> dict[str, set[str]]:
    return {m: set(actions) for m in modules}


@dataclass(frozen=True)
class RoleDef:
    key: str
    name: Any
    permissions: dict[str, set[str]] = field(default_factory=dict)
    visibility: str = "own"  # own / team / all: which records a role sees (applied in queries)

    def allows(self, module: str, action: str) -> bool:
        return action in self.permissions.get(module, ())


# Role names carry the context "role": "Sales" the role is not "Sales" the module, "Owner" not a record's owner.
BUILTIN_ROLES: dict[str, RoleDef] = {
    "owner": RoleDef("owner", lazy_pgettext("role", "Owner"), _grant(tuple(MODULES), ALL), "all"),
    "admin": RoleDef("admin", lazy_pgettext("role", "Admin"), _grant(tuple(MODULES), ALL), "all"),
    "manager": RoleDef(
        "manager",
        lazy_pgettext("role", "Manager"),
        {**_grant(CRM_MODULES, ALL), "users": {"view"}, "audit": {"view"}},
        "team",
    ),
    "sales": RoleDef(
        "sales",
        lazy_pgettext("role", "Sales"),
        {**_grant(("customers", "sales"), ("view", "create", "edit")), "reports": {"view"}},
        "own",
    ),
    "support": RoleDef(
        "support",
        lazy_pgettext("role", "Support"),
        {"customers": {"view", "edit"}, "service": {"view", "create", "edit"}, "reports": {"view"}},
        "all",
    ),
    "marketing": RoleDef(
        "marketing",
        lazy_pgettext("role", "Marketing"),
        {"customers": {"view", "export"}, **_grant(("marketing",), ALL), "reports": {"view"}},
        "all",
    ),
    "read_only": RoleDef(
        "read_only", lazy_pgettext("role", "Read-only"), _grant(CRM_MODULES, ("view",)), "all"
    ),
}
# Roles that may hand out or take away "owner".
OWNER_KEYS = {"owner"}


def role_for(key: str) -> RoleDef:
    """Resolve a membership's role key (built-in or "custom:<id>") within the bound tenant."""
    if key in BUILTIN_ROLES:
        return BUILTIN_ROLES[key]
    if key.startswith("custom:"):
        from saas.extensions import db
        from tenants.admin.models import Role

        role = db.session.get(Role, int(key.split(":", 1)[1]))
        if role is not None:
            perms = {m: set(a) & set(ACTIONS) for m, a in (role.permissions or {}).items() if m in MODULES}
            return RoleDef(key, role.name, perms, role.visibility)
    return RoleDef(key, "?", {})  # unknown role: no permissions at all


def can(module: str, action: str = "view") -> bool:
    role: RoleDef | None = g.get("role")
    return bool(role and role.allows(module, action))


def require(module: str, action: str = "view") -> Callable:
    """Decorator for tenant routes: 403 unless the member's role allows module/action."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not can(module, action):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = (module, action)  # type: ignore[attr-defined]
        return wrapped

    return decorator
