"""Helpers for modules' exporters and erasers: rows as JSON, and scrubbing the audit log.

The audit hook keeps the before/after values of every changed row, so erasing a person from the
tables alone would leave their data in the log. An eraser therefore also calls `scrub_audit` for
the rows it erased (and `scrub_text` for values such as an email address that appear in free text):
the entries stay (who did what, when, to which row id), their values become "[erased]".
Erasers write with UPDATE/DELETE statements, not through ORM objects, so the erasure itself adds no
entries with the old values; the caller records one entry saying that an erasure happened.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, cast, func, inspect, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB

from saas.audit import DERIVED_FIELDS
from saas.extensions import db

ERASED = "[erased]"
# Derived columns (the search index) are not personal data of their own and not worth exporting.
DERIVED = frozenset(DERIVED_FIELDS)


def plain(value: Any) -> Any:
    """A value as JSON can hold it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def row_dict(obj: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of an ORM row (derived ones and `skip` left out), JSON-ready."""
    left_out = DERIVED | set(skip)
    return {
        attr.key: plain(getattr(obj, attr.key))
        for attr in inspect(obj).mapper.column_attrs
        if attr.key not in left_out
    }


def _audit_table() -> Any:
    from tenants.admin.models import AuditEvent

    return AuditEvent.__table__


def _blank(changes: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, pair in (changes or {}).items():
        if key in keep or not isinstance(pair, list):
            out[key] = pair
        else:
            out[key] = [None if v is None else ERASED for v in pair]
    return out


def scrub_audit(
    entity: str,
    entity_ids: Iterable[Any] = (),
    refs: dict[str, Any] | None = None,
    keep: Iterable[str] = (),
) -> int:
    """Blank the values in the bound tenant's audit entries about some rows of table `entity`.

    The entries are those whose entity_id is one of `entity_ids`, or whose changes show every column
    of `refs` with that value (e.g. {"contact_id": 12}: rows since deleted are found this way too).
    Columns in `keep` (ids, dates, states: nothing about the person) keep their values. Returns how
    many entries changed.
    """
    table = _audit_table()
    ids = [str(i) for i in entity_ids]
    found = []
    if ids:
        found.append(table.c.entity_id.in_(ids))
    if refs:
        # changes->'col' is [before, after]: the row pointed at the value before or after the change.
        found.append(
            and_(*(table.c.changes[col].op("@>")(literal([value], JSONB)) for col, value in refs.items()))
        )
    if not found:
        return 0
    rows = db.session.execute(
        select(table.c.id, table.c.changes).where(table.c.entity == entity, or_(*found))
    ).all()
    kept = set(keep)
    params = []
    for row_id, changes in rows:
        blanked = _blank(changes, kept)
        if blanked != changes:
            params.append({"row_id": row_id, "new": blanked})
    if params:
        db.session.execute(
            update(table).where(table.c.id == bindparam("row_id")).values(changes=bindparam("new")),
            params,
            execution_options={"synchronize_session": False},
        )
    return len(params)


def scrub_text(values: Iterable[str | None]) -> int:
    """Replace these strings (an email address, ...) wherever they appear in the audit log's summaries
    and values. Strings of fewer than 5 characters, or that JSON would escape, are left alone."""
    table = _audit_table()
    total = 0
    for value in {v for v in values if v}:
        if len(value) < 5 or any(ch in value for ch in '"\\') or any(ord(ch) < 32 for ch in value):
            continue
        as_text = cast(table.c.changes, Text)
        result = db.session.execute(
            update(table)
            .where(or_(func.strpos(table.c.summary, value) > 0, func.strpos(as_text, value) > 0))
            .values(
                summary=func.replace(table.c.summary, value, ERASED),
                changes=cast(func.replace(as_text, value, ERASED), JSONB),
            ),
            execution_options={"synchronize_session": False},
        )
        total += result.rowcount
    return total
