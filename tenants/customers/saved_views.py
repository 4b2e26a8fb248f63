"""Saved views of the company and contact lists: a name for a list's filters and sort.

A view belongs to the user who saved it; a shared view is offered to everyone in the workspace
(each still sees only the records their visibility allows). Only the owner deletes a view.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, or_, select

from saas.extensions import db
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.list_models import SavedView
from tenants.customers.models import RECORD_TYPES
from tenants.customers.people import Viewer

MAX_VIEWS = 100
# Never part of a saved view: the page cursor, and the parts of the "add a filter" box.
SKIPPED = {"after", "add_field", "add_op", "add_value", "view", "csrf_token"}


def clean_query(raw: str) -> str:
    """The list's query string without a page cursor or anything that is not a filter or sort."""
    pairs = [(k, v) for k, v in parse_qsl(raw or "", keep_blank_values=False) if k not in SKIPPED]
    query = urlencode(pairs)
    if len(query) > 4000:
        raise CustomerError(_("These filters are too long to save."))
    return query


_VIEWS_FOR = (  # built once (every list page asks), run with each call's values
    select(SavedView)
    .where(
        SavedView.record_type == bindparam("record_type"),
        or_(SavedView.user_id == bindparam("user_id"), SavedView.shared.is_(True)),
    )
    .order_by(SavedView.name, SavedView.id)
)


def views_for(viewer: Viewer, record_type: str) -> list[SavedView]:
    """The viewer's own views and the shared ones, by name."""
    return list(db.session.scalars(_VIEWS_FOR, {"record_type": record_type, "user_id": viewer.user_id}))


def save(viewer: Viewer, record_type: str, name: str, query: str, shared: bool = False) -> SavedView:
    """Save a view; saving under a name the viewer already uses replaces that view."""
    if record_type not in RECORD_TYPES:
        raise NotFound()
    name = (name or "").strip()
    if not name:
        raise CustomerError(_("Give the view a name."), field="name")
    if len(name) > 80:
        raise CustomerError(_("A name of at most 80 characters, please."), field="name")
    query = clean_query(query)
    view = db.session.scalar(
        select(SavedView).where(
            SavedView.record_type == record_type,
            SavedView.user_id == viewer.user_id,
            SavedView.name == name,
        )
    )
    if view is None:
        count = db.session.scalar(
            select(func.count())
            .select_from(SavedView)
            .where(SavedView.user_id == viewer.user_id, SavedView.record_type == record_type)
        )
        if count >= MAX_VIEWS:
            raise CustomerError(_("You have too many saved views; delete one first."))
        view = SavedView(user_id=viewer.user_id, record_type=record_type, name=name)
        db.session.add(view)
    view.query = query
    view.shared = bool(shared)
    db.session.commit()
    return view


def delete(viewer: Viewer, view_id: int) -> SavedView:
    """Delete one of the viewer's own views (another's, or one that does not exist: NotFound)."""
    view = db.session.scalar(
        select(SavedView).where(SavedView.id == view_id, SavedView.user_id == viewer.user_id)
    )
    if view is None:
        raise NotFound()
    db.session.delete(view)
    db.session.commit()
    return view
