"""The timeline of a company or contact: notes, calls, meetings, emails and stage changes.

Entries are seen through their record: whoever may see the company (or the
contact) sees its timeline. An entry logged on a contact of a company also
carries the company, so it shows on the company's 360 page too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from saas import mail
from saas.extensions import db
from saas.tenancy import require_tenant
from tenants import listing
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import Activity, Company, Contact
from tenants.customers.people import Viewer
from tenants.customers.sanitize import plain_text, sanitize_html
from tenants.customers.services import get_record

LOGGABLE = ("note", "call", "meeting")
KIND_LABELS: dict[str, Any] = {
    "note": _l("Note"),
    "call": _l("Call"),
    "meeting": _l("Meeting"),
    "email": _l("Email"),
    "stage_change": _l("Stage change"),
}
KIND_ICONS = {
    "note": "bi-sticky",
    "call": "bi-telephone",
    "meeting": "bi-people",
    "email": "bi-envelope",
    "stage_change": "bi-signpost-split",
}
# What counts as "being in contact" for the key figure "last contact".
CONTACT_KINDS = ("call", "meeting", "email")
MAX_BODY = 50_000
TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")


def as_html(text: str | None) -> str:
    """Sanitised HTML of an entry's text: formatted text as it comes, plain text made into paragraphs."""
    text = (text or "").strip()
    if not TAG_RE.search(text):
        paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
        text = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())
    return sanitize_html(text)


def _when(value: Any) -> datetime:
    if value in (None, ""):
        return datetime.now(UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise CustomerError(_("Enter a date and time."), "occurred_at") from None
    if not isinstance(value, datetime):
        raise CustomerError(_("Enter a date and time."), "occurred_at")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.year < 1970 or value > datetime.now(UTC) + timedelta(days=366):
        raise CustomerError(_("That date cannot be right."), "occurred_at")
    return value


def log_activity(
    viewer: Viewer,
    record_type: str,
    record_id: int,
    kind: str,
    subject: str = "",
    body: str = "",
    occurred_at: Any = None,
    meta: dict[str, Any] | None = None,
) -> Activity:
    """Log a note (formatted, sanitised), call or meeting on a company or contact the viewer may see."""
    record = get_record(viewer, record_type, record_id)
    if kind not in LOGGABLE:
        raise CustomerError(_("Choose note, call or meeting."), "kind")
    subject = (subject or "").strip()
    if len(subject) > 300:
        raise CustomerError(_("The subject can be at most 300 characters long."), "subject")
    if len(body or "") > MAX_BODY:
        raise CustomerError(_("The text is too long (at most 50,000 characters)."), "body")
    body = as_html(body)
    if kind == "note" and not plain_text(body):
        raise CustomerError(_("Write the note."), "body")
    if kind != "note" and not subject and not plain_text(body):
        raise CustomerError(_("Say what it was about."), "subject")
    clean_meta: dict[str, Any] = {}
    meta = meta or {}
    if meta.get("duration_min") not in (None, ""):
        try:
            minutes = int(meta["duration_min"])
        except (TypeError, ValueError):
            raise CustomerError(_("Enter the duration in minutes."), "duration_min") from None
        if not 0 <= minutes <= 24 * 60:
            raise CustomerError(_("Enter the duration in minutes (at most a day)."), "duration_min")
        clean_meta["duration_min"] = minutes
    if kind == "call" and meta.get("direction") in ("in", "out"):
        clean_meta["direction"] = meta["direction"]
    activity = Activity(
        kind=kind,
        subject=subject,
        body=body,
        occurred_at=_when(occurred_at),
        company_id=record.id if isinstance(record, Company) else record.company_id,
        contact_id=record.id if isinstance(record, Contact) else None,
        user_id=viewer.user_id,
        meta=clean_meta,
    )
    db.session.add(activity)
    db.session.commit()
    return activity


def get_activity(viewer: Viewer, activity_id: int) -> Activity:
    """An entry of a timeline the viewer may see."""
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        raise NotFound(activity_id)
    for record_type, record_id in (("contact", activity.contact_id), ("company", activity.company_id)):
        if record_id is not None:
            try:
                get_record(viewer, record_type, record_id)
                return activity
            except NotFound:
                continue
    raise NotFound(activity_id)


def delete_activity(viewer: Viewer, activity_id: int) -> Activity:
    """Delete an entry: its author, or someone who sees every record; stage changes are history and stay."""
    activity = get_activity(viewer, activity_id)
    if activity.kind == "stage_change":
        raise CustomerError(_("Stage changes are history: they cannot be deleted."))
    if activity.user_id != viewer.user_id and viewer.visibility != "all":
        raise CustomerError(_("Only its author can delete this entry."))
    if activity.kind == "email" and activity.outbox_id is not None:
        mail.cancel([activity.outbox_id], require_tenant().id)  # deleting an unsent email stops it
    db.session.delete(activity)
    db.session.commit()
    return activity


TIMELINE_SPEC = listing.ListSpec(
    fields=[
        listing.Field("occurred_at", _l("When"), Activity.occurred_at, "datetime", nullable=False),
        listing.Field(
            "kind", _l("Kind"), Activity.kind, "choice", choices=list(KIND_LABELS.items()), sortable=False
        ),
    ],
    id_column=Activity.id,
    default_sort="-occurred_at",
)


def timeline(viewer: Viewer, record_type: str, record_id: int, args: Any = None) -> listing.Page:
    """A page of the record's timeline, newest first (args: kind filter, after cursor, limit)."""
    record = get_record(viewer, record_type, record_id)
    column = Activity.company_id if record_type == "company" else Activity.contact_id
    query = listing.parse_args(TIMELINE_SPEC, args or {})
    query.sort, query.desc = "occurred_at", True
    if not (args or {}).get("limit"):
        query.size = 20
    return listing.fetch_page(select(Activity).where(column == record.id), query)


def last_contact(record_type: str, record_id: int) -> datetime | None:
    column = Activity.company_id if record_type == "company" else Activity.contact_id
    return db.session.scalar(
        select(func.max(Activity.occurred_at)).where(
            column == record_id,
            Activity.kind.in_(CONTACT_KINDS),
            Activity.occurred_at <= func.now(),
            Activity.email_status.is_distinct_from("failed"),  # an email that never went out is no contact
        )
    )
