"""The audit log: one session hook records every tenant-table write, plus explicit events.

Who/when/IP come from the actor bound for the request or job.
"""

from __future__ import annotations

import contextvars
import decimal
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from saas.models import utcnow
from saas.tenancy import current_tenant, is_tenant_table

# Never written into the log, whatever table they sit in.
SECRET_FIELDS = {"password_hash", "token_hash", "api_token_hash"}
# Derived from other columns (tenants.customers.search.DERIVED: the search index, the phones'
# duplicate keys): their changes say nothing the audit log needs.
DERIVED_FIELDS = {"search_text", "search_grams", "phone_keys"}


@dataclass(frozen=True)
class Actor:
    user_id: int | None = None
    email: str | None = None
    ip: str | None = None
    request_id: str | None = None


_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=Actor())  # noqa: B039 - frozen


def set_actor(actor: Actor) -> contextvars.Token:
    return _actor.set(actor)


def current_actor() -> Actor:
    return _actor.get()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return "<bytes>"
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def _redacted(value: Any) -> str | None:
    return None if value is None else "<encrypted>"


def _changes(obj: Any, action: str) -> dict[str, list[Any]]:
    state = inspect(obj)
    out: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in SECRET_FIELDS or key in DERIVED_FIELDS:
            continue
        # An encrypted column (saas.crypto.EncryptedText): that it changed, never its plaintext.
        shown = _redacted if getattr(attr.columns[0].type, "audit_redacted", False) else _plain
        hist = state.attrs[key].history
        if action == "insert":
            value = hist.added[0] if hist.added else getattr(obj, key, None)
            if value is not None:
                out[key] = [None, shown(value)]
        elif action == "delete":
            value = (hist.deleted or hist.unchanged or [None])[0]
            out[key] = [shown(value), None]
        elif hist.has_changes():
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if before != after:
                out[key] = [shown(before), shown(after)]
    return out


def _row(action: str, entity: str, entity_id: Any, changes: dict, summary: str = "") -> dict[str, Any]:
    actor = _actor.get()
    return {
        "at": utcnow(),
        "user_id": actor.user_id,
        "user_email": actor.email,
        "ip": actor.ip,
        "request_id": actor.request_id,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "changes": changes,
        "summary": summary,
    }


def _audit_table() -> Any:
    from tenants.admin.models import AuditEvent

    return AuditEvent.__table__


def _after_flush(session: Session, _ctx: Any) -> None:
    if current_tenant() is None:
        return
    table = _audit_table()
    rows = []
    for action, objs in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objs:
            mapper_table = inspect(obj).mapper.local_table
            if not is_tenant_table(mapper_table) or mapper_table is table:
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _changes(obj, action)
            if action == "update" and not changes:
                continue
            # A row inserted in this flush has no identity key yet; its primary key is already set.
            state = inspect(obj)
            ident = state.identity or tuple(state.mapper.primary_key_from_instance(obj))
            rows.append(
                _row(action, mapper_table.name, ident[0] if ident and len(ident) == 1 else ident, changes)
            )
    if rows:
        session.connection().execute(insert(table), rows)


def record(
    action: str, entity: str, entity_id: Any = None, changes: dict | None = None, summary: str = ""
) -> None:
    """Record an explicit event (sign-in, invitation, role change, ...) in the bound tenant's log."""
    from saas.extensions import db

    db.session.execute(insert(_audit_table()), [_row(action, entity, entity_id, changes or {}, summary)])


def record_many(action: str, entity: str, events: list[tuple[Any, str]]) -> None:
    """Several explicit events of one kind, (entity id, summary) each, in one statement (bulk writes)."""
    from saas.extensions import db

    if events:
        db.session.execute(insert(_audit_table()), [_row(action, entity, i, {}, s) for i, s in events])


def install(session_class: type[Session]) -> None:
    if not event.contains(session_class, "after_flush", _after_flush):
        event.listen(session_class, "after_flush", _after_flush)
