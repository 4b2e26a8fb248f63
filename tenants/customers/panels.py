"""Panels of the customer 360 page: where other modules show what they hold about a customer.

A module adds its panel from its own package, without touching this one:

    from tenants.customers.panels import register_panel

    def load_deals(record, viewer):            # record: the Company or Contact; viewer: a Viewer
        return {"deals": deals_of(viewer, record.id)}

    register_panel("company", "deals", _l("Deals"), "sales/_deals_panel.html", load_deals,
                   order=200, permission=("sales", "view"))

The template gets `record`, `record_type`, `panel`, `viewer` and whatever the
loader returns. A planned panel (deals, contracts, orders, tickets, campaigns)
that no module has registered yet shows as a clearly marked empty place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from saas.permissions import can
from tenants.customers.models import RECORD_TYPES

log = logging.getLogger(__name__)
Loader = Callable[[Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class Panel:
    record_type: str
    key: str
    title: Any
    template: str
    loader: Loader
    order: int = 100
    permission: tuple[str, str] | None = None
    column: str = "side"  # "main" (under the timeline) or "side"


@dataclass(frozen=True)
class Planned:
    key: str
    title: Any
    module: str
    order: int
    hint: Any


# The places later modules fill, in the order they appear.
PLANNED: tuple[Planned, ...] = (
    Planned(
        "deals", _l("Deals"), "sales", 200, _l("Open deals and their value arrive with the Sales module.")
    ),
    Planned(
        "contracts", _l("Contracts"), "sales", 210, _l("Contracts and renewals arrive with the Sales module.")
    ),
    Planned("orders", _l("Orders"), "sales", 220, _l("Orders and invoices arrive with the Sales module.")),
    Planned("tickets", _l("Tickets"), "service", 230, _l("Support tickets arrive with the Service module.")),
    Planned(
        "campaigns", _l("Campaigns"), "marketing", 240, _l("Campaigns arrive with the Marketing module.")
    ),
)

_registry: dict[str, dict[str, Panel]] = {rt: {} for rt in RECORD_TYPES}


def register_panel(
    record_type: str,
    key: str,
    title: Any,
    template: str,
    loader: Loader,
    order: int = 100,
    permission: tuple[str, str] | None = None,
    column: str = "side",
) -> Panel:
    """Add (or replace) the panel `key` on the 360 page of companies or contacts."""
    if record_type not in _registry:
        raise ValueError(f"panels are for {', '.join(RECORD_TYPES)}, not {record_type!r}")
    if column not in ("main", "side"):
        raise ValueError("column is 'main' or 'side'")
    panel = Panel(record_type, key, title, template, loader, order, permission, column)
    _registry[record_type][key] = panel
    return panel


def unregister_panel(record_type: str, key: str) -> None:
    _registry.get(record_type, {}).pop(key, None)


def registered(record_type: str) -> list[Panel]:
    return sorted(_registry.get(record_type, {}).values(), key=lambda p: (p.order, p.key))


@dataclass
class Shown:
    """A panel as the page shows it: rendered HTML, or an empty place for a module to come."""

    key: str
    title: Any
    order: int
    column: str
    html: Markup | None = None
    planned: Planned | None = None
    failed: bool = False


def page_panels(record_type: str, record: Any, viewer: Any) -> list[Shown]:
    """The registered panels the viewer's role may see, rendered, plus the places still empty."""
    shown: list[Shown] = []
    for panel in registered(record_type):
        if panel.permission and not can(*panel.permission):
            continue
        try:
            ctx = panel.loader(record, viewer) or {}
            html = Markup(
                render_template(
                    panel.template, record=record, record_type=record_type, panel=panel, viewer=viewer, **ctx
                )
            )
            shown.append(Shown(panel.key, panel.title, panel.order, panel.column, html=html))
        except Exception:  # noqa: BLE001 - one module's broken panel must not take the customer page down
            log.exception("360 panel %s/%s failed", record_type, panel.key)
            shown.append(Shown(panel.key, panel.title, panel.order, panel.column, failed=True))
    keys = {s.key for s in shown} | set(_registry.get(record_type, {}))
    for planned in PLANNED:
        if planned.key not in keys:
            shown.append(Shown(planned.key, planned.title, planned.order, "side", planned=planned))
    return sorted(shown, key=lambda s: (s.order, s.key))
