"""Customers and personal data: the consent ledger, and this module's exporter and eraser.

- Consent ledger (table consent_events): one row, appended, whenever a contact's email or SMS
  consent is given or withdrawn (or the stated "how" of a given consent changes), by whatever path
  the contact is written through the ORM (forms, API, jobs). Hooked once, on the session's flush.
- Exporter (saas.compliance.registry): for a contact, the contact and everything about them here:
  timeline, tasks, stage history, attachments (with their bytes), consent ledger, import records and
  the contact's change history; for a staff user, what they wrote, own and are assigned.
- Eraser: a contact keeps its id and links (company, owner, stage history, deals later) but loses
  everything that identifies them; entries about them are blanked, attachments deleted (bytes too),
  consent "how" texts and import "previous values" cleared, the audit log's values scrubbed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    String,
    delete,
    event,
    exists,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from saas import audit
from saas.compliance import registry
from saas.compliance.tools import ERASED, row_dict, scrub_audit, scrub_text
from saas.extensions import db
from saas.models import utcnow
from saas.tenancy import TenantSession, current_tenant
from tenants.base import TENANT, id_column
from tenants.customers import search
from tenants.customers.attachments import delete_files
from tenants.customers.extra_models import Attachment
from tenants.customers.fields import plain_values
from tenants.customers.imports.models import Import, ImportRecord
from tenants.customers.list_models import BulkBatch, SavedView
from tenants.customers.models import Activity, Company, Contact, LifecycleChange, Task, Team, TeamMember
from tenants.customers.panels import register_panel

CHANNELS = ("email", "sms")


class ConsentEvent(db.Model):
    """Append-only: a contact's consent to a channel given or withdrawn, when, how and by whom."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact_id", "contact_id", "id"), TENANT)

    id: Mapped[int] = id_column()
    # CASCADE: the ledger is part of the contact's personal data and goes when the contact is deleted.
    contact_id: Mapped[int] = mapped_column(ForeignKey("tenant.contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))  # email / sms
    granted: Mapped[bool] = mapped_column(Boolean)
    how: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # as stated on the contact
    user_id: Mapped[int | None] = mapped_column(BigInteger)  # who recorded it (None: a job, the API...)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# The ledger hook --------------------------------------------------------------------------------

_PENDING = "consent_ledger_pending"
RESTORING = "consent_ledger_restoring"  # session.info: ids of contacts an undo is putting back


def _ledger_rows(session: Session, _ctx: Any) -> None:
    """After a flush: note the consent changes of the contacts just written (history is still there)."""
    if current_tenant() is None:
        return
    found = []
    for obj in (*session.new, *session.dirty):
        if not isinstance(obj, Contact):
            continue
        state = inspect(obj)
        for channel in CHANNELS:
            granted = bool(getattr(obj, f"consent_{channel}"))
            how = getattr(obj, f"consent_{channel}_how") or ""
            if obj in session.new:
                # A new contact: only consent given is an event (not a restored one: its ledger returns).
                changed = granted and obj.id not in session.info.get(RESTORING, ())
            else:
                flag = state.attrs[f"consent_{channel}"].history
                how_hist = state.attrs[f"consent_{channel}_how"].history
                changed = flag.has_changes() or (granted and how_hist.has_changes())
            if changed:
                when = getattr(obj, f"consent_{channel}_at") or utcnow()
                found.append((obj.id, channel, granted, how, when))
    if found:
        session.info.setdefault(_PENDING, []).extend(found)


def _ledger_add(session: Session, _ctx: Any) -> None:
    """After the flush has finished: add the ledger rows; the commit flushes them (and audits them)."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    user_id = audit.current_actor().user_id
    for contact_id, channel, granted, how, when in pending:
        session.add(
            ConsentEvent(
                contact_id=contact_id, channel=channel, granted=granted, how=how, at=when, user_id=user_id
            )
        )


def _clear_pending(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING, None)


for _name, _fn in (
    ("after_flush", _ledger_rows),
    ("after_flush_postexec", _ledger_add),
    ("after_rollback", _clear_pending),
):
    if not event.contains(TenantSession, _name, _fn):
        event.listen(TenantSession, _name, _fn)


def ledger(contact_id: int) -> list[ConsentEvent]:
    """A contact's consent ledger, newest first."""
    return list(
        db.session.scalars(
            select(ConsentEvent).where(ConsentEvent.contact_id == contact_id).order_by(ConsentEvent.id.desc())
        )
    )


def _load_consent(record: Contact, _viewer: Any) -> dict[str, Any]:
    from tenants.customers.people import names

    rows = ledger(record.id)
    return {"consent_rows": rows, "consent_names": names(r.user_id for r in rows)}


register_panel(
    "contact",
    "consent",
    _l("Consent"),
    "compliance/_consent_panel.html",
    _load_consent,
    order=30,
    permission=("customers", "view"),
)


# Export -----------------------------------------------------------------------------------------


def _all(stmt: Any) -> list[Any]:
    return list(db.session.scalars(stmt))


def _export_contact(contact_id: int) -> dict[str, Any] | None:
    from tenants.admin.models import AuditEvent

    contact = db.session.get(Contact, contact_id)
    if contact is None:
        return None
    company = db.session.get(Company, contact.company_id) if contact.company_id else None
    attachments = _all(
        select(Attachment)
        .where(Attachment.record_type == "contact", Attachment.record_id == contact_id)
        .order_by(Attachment.id)
    )
    imports = db.session.execute(
        select(ImportRecord, Import.file_name, Import.created_at)
        .join(Import, Import.id == ImportRecord.import_id)
        .where(ImportRecord.record_type == "contact", ImportRecord.record_id == contact_id)
        .order_by(ImportRecord.id)
    ).all()
    history = _all(
        select(AuditEvent)
        .where(AuditEvent.entity == "contacts", AuditEvent.entity_id == str(contact_id))
        .order_by(AuditEvent.id)
    )
    data = {
        # Sensitive custom values decrypted: the person gets their data, not ciphertext.
        "contact": {**row_dict(contact), "custom": plain_values(contact.custom)},
        "company": {"id": company.id, "name": company.name} if company else None,
        "timeline": [
            row_dict(a)
            for a in _all(
                select(Activity)
                .where(Activity.contact_id == contact_id)
                .order_by(Activity.occurred_at, Activity.id)
            )
        ],
        "tasks": [
            row_dict(t) for t in _all(select(Task).where(Task.contact_id == contact_id).order_by(Task.id))
        ],
        "lifecycle_changes": [
            row_dict(c)
            for c in _all(
                select(LifecycleChange)
                .where(LifecycleChange.record_type == "contact", LifecycleChange.record_id == contact_id)
                .order_by(LifecycleChange.at, LifecycleChange.id)
            )
        ],
        "attachments": [row_dict(a, skip=("storage_key",)) for a in attachments],
        "consent_ledger": [row_dict(c) for c in reversed(ledger(contact_id))],
        "import_records": [
            {**row_dict(rec), "import_file_name": file_name, "import_created_at": _iso(created)}
            for rec, file_name, created in imports
        ],
        # The record's change history from the audit log (who changed it is the workspace's business).
        "history": [
            {"at": _iso(e.at), "action": e.action, "changes": e.changes, "summary": e.summary}
            for e in history
        ],
    }
    files = [(f"attachments/{a.id}-{a.file_name}", a.storage_key) for a in attachments]
    return {"json": data, "files": files}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _export_staff(user_id: int) -> dict[str, Any]:
    owned = {
        "companies": _all(select(Company.id).where(Company.owner_id == user_id).order_by(Company.id)),
        "contacts": _all(select(Contact.id).where(Contact.owner_id == user_id).order_by(Contact.id)),
    }
    created = {
        "companies": _all(select(Company.id).where(Company.created_by == user_id).order_by(Company.id)),
        "contacts": _all(select(Contact.id).where(Contact.created_by == user_id).order_by(Contact.id)),
    }
    written = _all(
        select(Activity).where(Activity.user_id == user_id).order_by(Activity.occurred_at, Activity.id)
    )
    tasks = _all(
        select(Task).where(or_(Task.assignee_id == user_id, Task.created_by == user_id)).order_by(Task.id)
    )
    uploads = _all(select(Attachment).where(Attachment.uploaded_by == user_id).order_by(Attachment.id))
    teams = _all(
        select(Team.name).join(TeamMember, TeamMember.team_id == Team.id).where(TeamMember.user_id == user_id)
    )
    views = _all(select(SavedView).where(SavedView.user_id == user_id).order_by(SavedView.id))
    data = {
        # Records they own or created, by id: the records themselves are about other people.
        "owned_record_ids": owned,
        "created_record_ids": created,
        "timeline_entries_written": [row_dict(a) for a in written],
        "tasks_assigned_or_created": [row_dict(t) for t in tasks],
        "attachments_uploaded": [row_dict(a, skip=("storage_key",)) for a in uploads],
        "teams": teams,
        "saved_views": [row_dict(v) for v in views],
    }
    return {"json": data}


def export(subject: registry.Subject) -> dict[str, Any] | None:
    if subject.kind == "contact":
        return _export_contact(subject.id)
    if subject.kind == "staff_user":
        return _export_staff(subject.id)
    return None


# Erasure ----------------------------------------------------------------------------------------

# Audit-log columns that say nothing about the person: they keep their values when entries are scrubbed.
KEEP = {
    "contacts": {
        "id", "company_id", "owner_id", "lifecycle_stage", "source", "consent_email", "consent_sms",
        "created_by", "created_at", "updated_at",
    },
    "activities": {
        "id", "kind", "occurred_at", "company_id", "contact_id", "user_id", "meta", "created_at", "outbox_id",
        "email_status",
    },
    "tasks": {
        "id", "due_at", "reminder_at", "reminded_at", "assignee_id", "company_id", "contact_id", "done_at",
        "created_by", "created_at", "updated_at",
    },
    "attachments": {"id", "record_type", "record_id", "content_type", "size", "uploaded_by", "created_at"},
    "consent_events": {"id", "contact_id", "channel", "granted", "at", "user_id", "created_at"},
    "import_records": {"id", "import_id", "record_type", "record_id"},
    "bulk_batches": {"id", "user_id", "record_type", "action", "detail", "count", "created_at", "undone_at"},
}  # fmt: skip

NO_SYNC = {"synchronize_session": False}


def _erase_contact(contact_id: int) -> dict[str, int] | None:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        return None
    emails = [e for e in (contact.email, *(contact.emails or [])) if e]
    counts: dict[str, int] = {}

    # Timeline entries and tasks about them: kept (ids, dates, links), their text blanked.
    activity_ids = _all(select(Activity.id).where(Activity.contact_id == contact_id))
    blank_activity: dict[str, Any] = {"subject": "", "body": ""}
    if "email_to" in Activity.__table__.c:  # emails sent from the CRM name their recipient
        blank_activity["email_to"] = None
    db.session.execute(
        update(Activity).where(Activity.contact_id == contact_id).values(**blank_activity),
        execution_options=NO_SYNC,
    )
    counts["timeline_entries_blanked"] = len(activity_ids)
    task_ids = _all(select(Task.id).where(Task.contact_id == contact_id))
    db.session.execute(
        update(Task).where(Task.contact_id == contact_id).values(title=ERASED, notes=""),
        execution_options=NO_SYNC,
    )
    counts["tasks_blanked"] = len(task_ids)

    # Attachments: rows and bytes.
    files = db.session.execute(
        select(Attachment.id, Attachment.storage_key).where(
            Attachment.record_type == "contact", Attachment.record_id == contact_id
        )
    ).all()
    if files:
        db.session.execute(
            delete(Attachment).where(Attachment.id.in_([f.id for f in files])), execution_options=NO_SYNC
        )
        delete_files(key for _id, key in files)
    counts["attachments_deleted"] = len(files)

    # The ledger keeps the facts (channel, given or withdrawn, when), not the free text.
    counts["consent_entries_cleared"] = db.session.execute(
        update(ConsentEvent).where(ConsentEvent.contact_id == contact_id).values(how=""),
        execution_options=NO_SYNC,
    ).rowcount
    # An import's undo would put their old values back: it has nothing to put back any more.
    counts["import_records_cleared"] = db.session.execute(
        update(ImportRecord)
        .where(
            ImportRecord.record_type == "contact",
            ImportRecord.record_id == contact_id,
            ImportRecord.previous.is_not(None),
        )
        .values(previous={}),
        execution_options=NO_SYNC,
    ).rowcount
    counts["import_error_rows_removed"] = _scrub_import_errors(emails)
    batch_ids = _scrub_bulk_batches(contact_id)

    db.session.execute(
        update(Contact)
        .where(Contact.id == contact_id)
        .values(
            first_name="Erased contact",
            last_name=f"#{contact_id}",
            full_name=f"Erased contact #{contact_id}",
            job_title="",
            email=None,
            emails=[],
            phones=[],
            birthday=None,
            interests="",
            preferences="",
            street="",
            city="",
            region="",
            postal_code="",
            country="",
            tags=[],
            custom={},
            consent_email=False,
            consent_email_at=None,
            consent_email_how="",
            consent_sms=False,
            consent_sms_at=None,
            consent_sms_how="",
        ),
        execution_options=NO_SYNC,
    )
    search.index("contact", [contact_id])

    # The audit log's copies of what was erased.
    scrubbed = scrub_audit("contacts", [contact_id], keep=KEEP["contacts"])
    scrubbed += scrub_audit("activities", activity_ids, {"contact_id": contact_id}, KEEP["activities"])
    scrubbed += scrub_audit("tasks", task_ids, {"contact_id": contact_id}, KEEP["tasks"])
    scrubbed += scrub_audit(
        "attachments",
        [f.id for f in files],
        {"record_type": "contact", "record_id": contact_id},
        KEEP["attachments"],
    )
    scrubbed += scrub_audit("consent_events", (), {"contact_id": contact_id}, KEEP["consent_events"])
    scrubbed += scrub_audit(
        "import_records", (), {"record_type": "contact", "record_id": contact_id}, KEEP["import_records"]
    )
    scrubbed += scrub_audit("bulk_batches", batch_ids, keep=KEEP["bulk_batches"])
    # Their addresses wherever else the log has them (an import's bad rows, an email's recipient...).
    scrubbed += scrub_text(emails)
    counts["audit_entries_scrubbed"] = scrubbed
    counts["contacts_anonymised"] = 1
    db.session.expire_all()
    return counts


def _scrub_import_errors(emails: list[str]) -> int:
    """Bad import rows keep the file's values for the error report: drop those naming the person."""
    if not emails:
        return 0
    found = [
        imp
        for imp in _all(select(Import).where(Import.record_type == "contact"))
        if any(e in str(imp.errors) for e in emails)
    ]
    removed = 0
    for imp in found:
        kept = [err for err in imp.errors or [] if not any(e in str(err) for e in emails)]
        removed += len(imp.errors or []) - len(kept)
        db.session.execute(
            update(Import).where(Import.id == imp.id).values(errors=kept), execution_options=NO_SYNC
        )
    return removed


def _scrub_bulk_batches(contact_id: int) -> list[int]:
    """A bulk delete keeps the deleted rows for undo: take this contact's rows out of it."""
    batches = _all(
        select(BulkBatch).where(
            BulkBatch.record_type == "contact",
            BulkBatch.action == "delete",
            BulkBatch.before["ids"].op("@>")(func.jsonb_build_array(contact_id)),
        )
    )
    for batch in batches:
        before = dict(batch.before or {})
        rows = dict(before.get("rows") or {})
        rows["contacts"] = [r for r in rows.get("contacts", []) if r.get("id") != contact_id]
        for name in ("activities", "tasks", "consent_events"):
            rows[name] = [r for r in rows.get(name, []) if r.get("contact_id") != contact_id]
        before["rows"] = rows
        before["ids"] = [i for i in before.get("ids", []) if i != contact_id]
        db.session.execute(
            update(BulkBatch).where(BulkBatch.id == batch.id).values(before=before), execution_options=NO_SYNC
        )
    return [b.id for b in batches]


def _erase_staff(user_id: int) -> dict[str, int]:
    """Staff: what only they use goes (team places, private saved views); records they own or wrote stay,
    pointing at their user id, which no longer resolves to a name in this workspace."""
    teams = db.session.execute(
        delete(TeamMember).where(TeamMember.user_id == user_id), execution_options=NO_SYNC
    ).rowcount
    views = db.session.execute(
        delete(SavedView).where(SavedView.user_id == user_id, SavedView.shared.is_(False)),
        execution_options=NO_SYNC,
    ).rowcount
    return {"team_places_removed": teams, "private_saved_views_deleted": views}


def erase(subject: registry.Subject) -> dict[str, int] | None:
    if subject.kind == "contact":
        return _erase_contact(subject.id)
    if subject.kind == "staff_user":
        return _erase_staff(subject.id)
    return None


# Subjects and retention -----------------------------------------------------------------------


def resolve_contact(contact_id: int) -> registry.Subject | None:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        return None
    return registry.Subject("contact", contact.id, contact.email, contact.full_name)


def stale_contacts(cutoff: datetime, skip: Any, limit: int = 500) -> list[int]:
    """Contacts nobody has touched since `cutoff`: not updated, no timeline entry, no task open or
    changed since. `skip` is a select of contact ids to leave out (those already erased)."""
    recent_activity = exists().where(
        Activity.contact_id == Contact.id, or_(Activity.occurred_at >= cutoff, Activity.created_at >= cutoff)
    )
    live_task = exists().where(
        Task.contact_id == Contact.id, or_(Task.done_at.is_(None), Task.updated_at >= cutoff)
    )
    return _all(
        select(Contact.id)
        .where(
            Contact.updated_at < cutoff,
            Contact.created_at < cutoff,
            ~recent_activity,
            ~live_task,
            Contact.id.not_in(skip),
        )
        .order_by(Contact.id)
        .limit(limit)
    )


registry.register("customers", export, erase)
registry.register_kind("contact", resolve_contact)
