"""Where CRM modules plug in, so the platform never has to be edited to add one.

- Importing a module's models here adds its tables to every tenant schema.
- DEMO_SEEDERS: functions (tenant, rng) that add sample records to the demo workspace.
- NAV: (permission module, label, endpoint) entries for the top navigation.
- ADMIN_MENU: further entries of the Admin menu (`add_admin_item`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tenants.admin.models  # noqa: F401
import tenants.api.models  # noqa: F401
import tenants.customers.duplicate_models  # noqa: F401
import tenants.customers.extra_models  # noqa: F401
import tenants.customers.imports.models  # noqa: F401
import tenants.customers.list_models  # noqa: F401
import tenants.customers.models  # noqa: F401
import tenants.customers.privacy  # noqa: F401 - consent ledger; customers' exporter and eraser

DEMO_SEEDERS: list[Callable[[Any, Any], None]] = []


class NavItem:
    """A top-navigation entry; endpoint None shows a module that is not built yet, disabled."""

    def __init__(self, module: str, label: Any, endpoint: str | None = None) -> None:
        self.module, self.label, self.endpoint = module, label, endpoint
        self.prefix = endpoint.rsplit(".", 1)[0] if endpoint else ""


def _nav() -> list[NavItem]:
    from flask_babel import lazy_gettext as _l

    return [
        NavItem("customers", _l("Customers")),
        NavItem("sales", _l("Sales")),
        NavItem("service", _l("Service")),
        NavItem("marketing", _l("Marketing")),
        NavItem("automation", _l("Automation")),
        NavItem("reports", _l("Reports")),
    ]


NAV: list[NavItem] = _nav()


class AdminItem:
    """An entry of the Admin menu, shown to those with `permission` (module, action)."""

    def __init__(self, permission: tuple[str, str], label: Any, endpoint: str, icon: str) -> None:
        self.permission, self.label, self.endpoint, self.icon = permission, label, endpoint, icon


# Filled by packages that add admin pages (billing, backups, privacy...), in menu order.
ADMIN_MENU: list[AdminItem] = []


def add_admin_item(permission: tuple[str, str], label: Any, endpoint: str, icon: str = "bi-gear") -> None:
    if all(item.endpoint != endpoint for item in ADMIN_MENU):
        ADMIN_MENU.append(AdminItem(permission, label, endpoint, icon))


def set_nav_endpoint(module: str, endpoint: str) -> None:
    """Called by a module package when it registers its blueprint."""
    for item in NAV:
        if item.module == module:
            item.endpoint, item.prefix = endpoint, endpoint.rsplit(".", 1)[0]
