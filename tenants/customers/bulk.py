"""Bulk actions on the company and contact lists (assign owner, add/remove a tag, delete), each undoable.

Only records the viewer may see are touched: the ids a page sends are filtered through the
visibility rule, so an id of a hidden record or of another workspace is silently left out.
Every change goes through the ORM, so the audit hook records it field by field.

A delete goes through services.delete_records, the one delete path of a single record, the API
and this (set-based: a few statements for any number of records). A batch keeps what undo needs (a
BulkBatch row): the previous owner or tags of each record, or, for a delete, the deleted rows as
JSON, taken just before (the record, the timeline entries, tasks, stage history and reminder-rule
marks that were about it alone) plus the links the database cut (ON DELETE SET NULL). Undo puts
back exactly that, within UNDO_WINDOW, by the user who made the batch. Attachments are not in the
batch: their rows and files stay where they are until attachments.purge_deleted_records, which
leaves alone any record an undo could still bring back (list_models.undoable_delete).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, select, text

from saas import audit
from saas.extensions import db
from saas.tenancy import qualified
from tenants.customers import emails, privacy, services
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.extra_models import RuleTask
from tenants.customers.list_models import UNDO_WINDOW, BulkBatch
from tenants.customers.models import Activity, Company, Contact, LifecycleChange, Task
from tenants.customers.people import Viewer, is_active_member
from tenants.customers.visibility import visible

MAX_IDS = 1000
ACTIONS = ("assign", "tag_add", "tag_remove", "delete")
MODELS: dict[str, Any] = {"company": Company, "contact": Contact}
# Tables whose rows go with a deleted record, in the order they are put back.
OWN_ROWS = {"activities": Activity, "tasks": Task, "lifecycle_changes": LifecycleChange}


def parse_ids(values: list[str]) -> list[int]:
    ids = []
    for value in values[:MAX_IDS]:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if 0 < number < 2**63 and number not in ids:
            ids.append(number)
    return ids


def visible_records(viewer: Viewer, record_type: str, ids: list[int]) -> list[Any]:
    """The records among `ids` this viewer may see (anything else is ignored), locked for the change."""
    model = MODELS[record_type]
    if not ids:
        return []
    stmt = select(model).where(model.id.in_(ids), visible(viewer, model)).order_by(model.id).with_for_update()
    return list(db.session.scalars(stmt))


def _batch(viewer: Viewer, record_type: str, action: str, detail: str, before: dict) -> BulkBatch:
    batch = BulkBatch(
        user_id=viewer.user_id,
        record_type=record_type,
        action=action,
        detail=detail[:200],
        count=len(before.get("ids", before.get("values", {}))),
        before=before,
    )
    db.session.add(batch)
    return batch


def run(viewer: Viewer, record_type: str, action: str, ids: list[int], value: str = "") -> BulkBatch | None:
    """Do one bulk action; the batch (None when no visible record was chosen)."""
    if record_type not in MODELS or action not in ACTIONS:
        raise CustomerError(_("Unknown action."))
    records = visible_records(viewer, record_type, ids)
    if not records:
        return None
    if action == "assign":
        batch = _assign(viewer, record_type, records, value)
    elif action in ("tag_add", "tag_remove"):
        batch = _tag(viewer, record_type, records, action, value)
    else:
        batch = _delete(viewer, record_type, records)
    db.session.commit()
    return batch


def _assign(viewer: Viewer, record_type: str, records: list[Any], value: str) -> BulkBatch:
    try:
        owner_id = int(value)
    except (TypeError, ValueError):
        raise CustomerError(_("Choose the new owner.")) from None
    if not is_active_member(owner_id):
        raise CustomerError(_("Choose an active member of this workspace."))
    before = {str(r.id): r.owner_id for r in records}
    for record in records:
        record.owner_id = owner_id
    return _batch(viewer, record_type, "assign", str(owner_id), {"values": before})


def _tag(viewer: Viewer, record_type: str, records: list[Any], action: str, value: str) -> BulkBatch:
    tags = services.clean_tags([value])
    if not tags:
        raise CustomerError(_("Enter a tag."))
    tag = tags[0]
    before: dict[str, list[str]] = {}
    for record in records:
        current = list(record.tags or [])
        if action == "tag_add" and tag not in current:
            if len(current) >= services.MAX_TAGS:
                continue
            before[str(record.id)] = current
            record.tags = [*current, tag]
        elif action == "tag_remove" and tag in current:
            before[str(record.id)] = current
            record.tags = [t for t in current if t != tag]
    return _batch(viewer, record_type, action, tag, {"values": before})


def _rows_json(table: str, where: str, params: dict[str, Any]) -> list[dict]:
    return _rows_json_by(table, where, params, "id")


def _rows_json_by(table: str, where: str, params: dict[str, Any], key: str) -> list[dict]:
    sql = (
        f"select coalesce(jsonb_agg(to_jsonb(t) order by t.{key}), '[]'::jsonb) "
        f"from {qualified(table)} t where {where}"
    )
    return db.session.execute(text(sql), params).scalar_one()


def _delete(viewer: Viewer, record_type: str, records: list[Any]) -> BulkBatch:
    ids = [r.id for r in records]
    table = "companies" if record_type == "company" else "contacts"
    col, other = ("company_id", "contact_id") if record_type == "company" else ("contact_id", "company_id")
    params = {"ids": ids, "rtype": record_type}
    before: dict[str, Any] = {"ids": ids, "rows": {table: _rows_json(table, "t.id = any(:ids)", params)}}
    own = f"t.{col} = any(:ids) and t.{other} is null"
    before["rows"]["activities"] = _rows_json("activities", own, params)
    before["rows"]["tasks"] = _rows_json("tasks", own, params)
    before["rows"]["lifecycle_changes"] = _rows_json(
        "lifecycle_changes", "t.record_type = :rtype and t.record_id = any(:ids)", params
    )
    if record_type == "contact":  # the consent ledger (deleted with the contact by CASCADE), as it was
        before["rows"]["consent_events"] = _rows_json("consent_events", "t.contact_id = any(:ids)", params)
    if record_type == "company":  # the reminder rule's mark on its tasks (goes with the company)
        before["rows"]["rule_tasks"] = _rows_json_by(
            "rule_tasks", "t.company_id = any(:ids)", params, "task_id"
        )
    # Rows that stay but lose their link (ON DELETE SET NULL): id -> the record they pointed at.
    links: dict[str, dict[str, int]] = {}
    cut: list[tuple[str, Any]] = [("activities", Activity), ("tasks", Task)]
    if record_type == "company":
        cut.append(("contacts", Contact))
    for name, model in cut:
        fk = getattr(model, col)
        rows = db.session.execute(select(model.id, fk).where(fk.in_(ids))).all()
        kept = {str(i): ref for i, ref in rows}
        for entry in before["rows"].get(name, []):
            kept.pop(str(entry["id"]), None)
        links[name] = kept
    before["links"] = links
    services.delete_records(record_type, records)  # the same delete as one record's, for all at once
    return _batch(viewer, record_type, "delete", "", before)


# Undo -----------------------------------------------------------------------------------


_LAST_BATCH = (  # built once (every list page asks), run with each call's values
    select(BulkBatch)
    .where(
        BulkBatch.user_id == bindparam("user_id"),
        BulkBatch.record_type == bindparam("record_type"),
        BulkBatch.created_at > bindparam("since"),
    )
    .order_by(BulkBatch.id.desc())
    .limit(1)
)


def last_batch(viewer: Viewer, record_type: str) -> BulkBatch | None:
    """The viewer's latest bulk action on this list, if it can still be undone."""
    since = datetime.now(UTC) - UNDO_WINDOW
    return db.session.scalar(
        _LAST_BATCH, {"user_id": viewer.user_id, "record_type": record_type, "since": since}
    )


def undo(viewer: Viewer, batch_id: int) -> BulkBatch:
    """Put back what a batch changed; only its author, once, within UNDO_WINDOW."""
    batch = db.session.scalar(
        select(BulkBatch)
        .where(BulkBatch.id == batch_id, BulkBatch.user_id == viewer.user_id)
        .with_for_update()
    )
    if batch is None:
        raise NotFound()
    if batch.undone_at is not None:
        raise CustomerError(_("That has already been undone."))
    if batch.created_at < datetime.now(UTC) - UNDO_WINDOW:
        raise CustomerError(_("It is too late to undo that."))
    model = MODELS[batch.record_type]
    if batch.action == "delete":
        _restore(batch)
    else:
        field = "owner_id" if batch.action == "assign" else "tags"
        values = batch.before.get("values", {})
        records = db.session.scalars(select(model).where(model.id.in_([int(i) for i in values])))
        for record in records:
            setattr(record, field, values[str(record.id)])
    batch.undone_at = datetime.now(UTC)
    audit.record("undo", "bulk_batches", batch.id, summary=f"{batch.action} {batch.record_type}")
    db.session.commit()
    return batch


def _populate(model: Any, rows: list[dict]) -> list[Any]:
    """ORM objects from rows saved as JSON (PostgreSQL turns the JSON back into the columns' types)."""
    if not rows:
        return []
    table = model.__table__.name
    sql = f"select * from jsonb_populate_recordset(null::{qualified(table)}, cast(:rows as jsonb))"
    result = db.session.execute(text(sql), {"rows": json.dumps(rows)}).mappings().all()
    return [model(**dict(row)) for row in result]


def _restore(batch: BulkBatch) -> None:
    rows = batch.before.get("rows", {})
    record_type = batch.record_type
    table = "companies" if record_type == "company" else "contacts"
    model = MODELS[record_type]
    existing = set(db.session.scalars(select(model.id).where(model.id.in_(batch.before.get("ids", [])))))
    records = [r for r in _populate(model, rows.get(table, [])) if r.id not in existing]
    restored = {r.id for r in records}
    # The ledger hook would take a restored contact's consent for a new one: its own ledger comes back.
    db.session.info[privacy.RESTORING] = restored
    try:
        db.session.add_all(records)
        db.session.flush()
    finally:
        db.session.info.pop(privacy.RESTORING, None)
    for event in _populate(privacy.ConsentEvent, rows.get("consent_events", [])):
        if event.contact_id in restored:
            db.session.add(event)
    col = "company_id" if record_type == "company" else "contact_id"
    restored_emails: list[Activity] = []
    for name, own_model in OWN_ROWS.items():
        for row in _populate(own_model, rows.get(name, [])):
            ref = row.record_id if name == "lifecycle_changes" else getattr(row, col)
            if ref in restored and db.session.get(own_model, row.id) is None:
                db.session.add(row)
                if name == "activities" and row.outbox_id is not None:
                    restored_emails.append(row)
    db.session.flush()
    for row in _populate(RuleTask, rows.get("rule_tasks", [])):
        if row.company_id in restored and db.session.get(Task, row.task_id) is not None:
            if db.session.get(RuleTask, row.task_id) is None:
                db.session.add(row)
    emails.restored(restored_emails)
    link_models = {"activities": Activity, "tasks": Task, "contacts": Contact}
    for name, links in batch.before.get("links", {}).items():
        link_model = link_models[name]
        for row_id, ref in links.items():
            if ref in restored:
                row = db.session.get(link_model, int(row_id))
                if row is not None and getattr(row, col) is None:
                    setattr(row, col, ref)
    db.session.flush()
