"""Emails to customers written on a 360 page: sent by the email job, kept on the timeline.

One-to-one mail, not marketing, so no consent check; a contact without an address is refused.
The mail goes out from the app's sender address (MAIL_FROM) under the writer's name, with replies
going to the writer. The timeline entry (kind "email") is written in the same transaction as the
outbox row (saas.mail.queue_email), so there is never one without the other. The send job reports
back through the hooks of workers.email: the entry follows its mail, queued -> sent, or retrying ->
failed once the job has used up its tries (with the error). The job is idempotent (the outbox row is
locked and a sent row is skipped), and the entry only ever changes status: a retry sends once and
records nothing twice.
"""

from __future__ import annotations

from email.utils import formataddr, parseaddr
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from saas.extensions import db
from saas.mail import after_commit, queue_email
from saas.models import EmailOutbox, User, utcnow
from saas.tenancy import require_tenant
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.models import Activity, Company, Contact
from tenants.customers.people import Viewer
from tenants.customers.sanitize import plain_text
from tenants.customers.services import CONTROL_RE, clean_email, get_contact, get_record
from tenants.customers.timeline import MAX_BODY, as_html, get_activity
from tenants.customers.visibility import visible
from workers import email as email_job

STATUS_LABELS: dict[str, Any] = {
    "queued": _l("Queued"),
    "retrying": _l("Not sent yet: trying again"),
    "sent": _l("Sent"),
    "failed": _l("Not sent"),
}
MAX_RECIPIENTS = 100  # contacts offered on a company's page


def addresses(contact: Contact) -> list[str]:
    """A contact's addresses, the primary one first."""
    return [a for a in dict.fromkeys([contact.email, *(contact.emails or [])]) if a]


def company_recipients(viewer: Viewer, company_id: int) -> list[tuple[int, str, str]]:
    """(id, name, email) of the company's contacts this viewer sees that have an address, by name.
    Three columns, not whole records: a busy company's page lists up to MAX_RECIPIENTS of them."""
    rows = db.session.execute(
        select(Contact.id, Contact.full_name, Contact.email)
        .where(Contact.company_id == company_id, Contact.email.is_not(None), visible(viewer, Contact))
        .order_by(func.lower(Contact.full_name), Contact.id)
        .limit(MAX_RECIPIENTS)
    )
    return [(cid, name or email, email) for cid, name, email in rows]


def _no_address(contact: Contact) -> CustomerError:
    return CustomerError(
        _("%(name)s has no email address: add one to the contact first.", name=contact.display_name),
        "to_contact",
    )


def _recipient(
    viewer: Viewer, record: Company | Contact, to_contact_id: Any, to_address: str
) -> tuple[str, Contact | None]:
    """(address, contact) the mail goes to; NotFound for a contact id the viewer may not see."""
    to_address = (to_address or "").strip()
    if isinstance(record, Contact):
        choices = addresses(record)
        if not choices:
            raise _no_address(record)
        if not to_address:
            return choices[0], record
        if to_address.lower() not in choices:
            raise CustomerError(_("Choose one of the contact's addresses."), "to_address")
        return to_address.lower(), record
    chosen = str(to_contact_id or "").strip()
    if chosen and to_address:
        raise CustomerError(_("Choose a contact or type an address, not both."), "to_address")
    if chosen:
        try:
            contact = get_contact(viewer, int(chosen))
        except ValueError:
            raise NotFound(chosen) from None
        if contact.company_id != record.id:
            raise CustomerError(_("Choose one of this company's contacts."), "to_contact")
        if not contact.email:
            raise _no_address(contact)
        return contact.email, contact
    if not to_address:
        raise CustomerError(_("Choose a contact or type an email address."), "to_contact")
    address = clean_email(to_address, "to_address") or ""
    # Typed, but one of the company's own contacts: the mail belongs on their timeline too.
    known = db.session.scalar(
        select(Contact)
        .where(Contact.company_id == record.id, Contact.email == address, visible(viewer, Contact))
        .order_by(Contact.id)
        .limit(1)
    )
    return address, known


def _one_line(value: Any) -> str:
    """Header text: no line breaks or control characters (they would end the header)."""
    return " ".join(CONTROL_RE.sub("", str(value or "")).split())


def sender(user: User) -> str:
    """From: the app's sender address under the writer's name."""
    address = parseaddr(current_app.config["MAIL_FROM"])[1] or current_app.config["MAIL_FROM"]
    return formataddr((_one_line(user.name)[:120], address))


def send_email(
    viewer: Viewer,
    record_type: str,
    record_id: int,
    subject: str,
    body: str,
    to_contact_id: Any = None,
    to_address: str = "",
) -> Activity:
    """Queue an email to a contact (or, from a company, one of its contacts or a typed address)."""
    record = get_record(viewer, record_type, record_id)
    to, contact = _recipient(viewer, record, to_contact_id, to_address)
    subject = _one_line(subject)
    if not subject:
        raise CustomerError(_("Write a subject."), "subject")
    if len(subject) > 300:
        raise CustomerError(_("The subject can be at most 300 characters long."), "subject")
    if len(body or "") > MAX_BODY:
        raise CustomerError(_("The text is too long (at most 50,000 characters)."), "body")
    html = as_html(body)
    text = plain_text(html)
    if not text:
        raise CustomerError(_("Write the email."), "body")
    user = db.session.get(User, viewer.user_id)
    if user is None:
        raise NotFound(viewer.user_id)
    row = queue_email(
        to, subject, "customer_email", tenant_id=require_tenant().id, title=subject, text=text, html=html
    )
    company_id = record.id if isinstance(record, Company) else record.company_id
    activity = Activity(
        kind="email",
        subject=subject,
        body=html,
        occurred_at=utcnow(),
        company_id=company_id,
        contact_id=contact.id if contact is not None else None,
        user_id=viewer.user_id,
        email_to=to,
        outbox_id=row.id,
        email_status="queued",
        meta={"from": sender(user), "reply_to": user.email},
    )
    db.session.add(activity)
    db.session.commit()
    return activity


def send_again(viewer: Viewer, activity_id: int) -> Activity:
    """Queue an email that failed for good once more (the same outbox row: it still goes out only once)."""
    activity = get_activity(viewer, activity_id)
    if activity.kind != "email" or activity.outbox_id is None or activity.email_status != "failed":
        raise CustomerError(_("Only an email that could not be sent can be sent again."))
    row = db.session.get(EmailOutbox, activity.outbox_id, with_for_update=True)
    if row is None:
        raise CustomerError(_("Only an email that could not be sent can be sent again."))
    if row.status != "sent":
        row.status = "queued"
    activity.email_status = row.status
    activity.meta = {k: v for k, v in (activity.meta or {}).items() if k != "error"}
    outbox_id = row.id

    def enqueue() -> None:
        from workers.queues import enqueue

        enqueue(email_job.send_email, outbox_id, queue_name="high")

    if row.status == "queued":
        after_commit(enqueue)
    db.session.commit()
    return activity


def restored(entries: list[Activity]) -> None:
    """Entries a bulk undo put back: an email their delete stopped before it went (saas.mail.cancel)
    shows as not sent, and can be sent again from the timeline."""
    ids = {e.outbox_id for e in entries if e.outbox_id is not None}
    if not ids:
        return
    stopped = set(
        db.session.scalars(
            select(EmailOutbox.id).where(EmailOutbox.id.in_(ids), EmailOutbox.status == "cancelled")
        )
    )
    for entry in entries:
        if entry.outbox_id in stopped:
            entry.email_status = "failed"


# What the send job tells the timeline (workers.email runs these inside the mail's tenant) ----------


def _entry(outbox_id: int) -> Activity | None:
    return db.session.scalar(select(Activity).where(Activity.outbox_id == outbox_id))


@email_job.on_headers
def _headers(row: EmailOutbox) -> dict[str, str]:
    activity = _entry(row.id)
    if activity is None:
        return {}
    meta = activity.meta or {}
    return {"From": meta.get("from") or "", "Reply-To": meta.get("reply_to") or ""}


@email_job.on_status
def _status(row: EmailOutbox) -> None:
    activity = _entry(row.id)
    if activity is None:  # not a CRM email, or its entry was deleted
        return
    meta = {k: v for k, v in (activity.meta or {}).items() if k not in ("error", "sent_at")}
    if row.status == "sent":
        meta["sent_at"] = row.sent_at.isoformat() if row.sent_at else None
    elif row.last_error:
        meta["error"] = row.last_error[:500]
    activity.email_status = row.status
    activity.meta = meta
    db.session.flush()  # while the tenant is bound: the audit hook logs it in this tenant
