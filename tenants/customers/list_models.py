"""Tenant-schema models of the lists: saved views and the undo record of bulk actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, exists, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import utcnow
from tenants.base import TENANT, id_column


class SavedView(db.Model):
    """A list's filters and sort under a name: its owner's, or shared with the whole workspace."""

    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_user", "record_type", "user_id", "id"), TENANT)

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(BigInteger)
    record_type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[str] = mapped_column(Text, default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


UNDO_WINDOW = timedelta(hours=24)  # how long a bulk action can be undone (tenants.customers.bulk)
PURGE_GRACE = timedelta(hours=1)  # see undoable_delete


class BulkBatch(db.Model):
    """One bulk action on a list, with what it needs to be undone.

    action: assign / tag_add / tag_remove (before: {id: previous owner or tags}) or delete
    (before: the deleted rows as JSON, table by table, and the links the database cut).
    """

    __tablename__ = "bulk_batches"
    __table_args__ = (Index("ix_bulk_batches_user", "user_id", "record_type", "id"), TENANT)

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(BigInteger)
    record_type: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(200), default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    before: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def undoable_delete(record_type: Any, record_id: Any) -> Any:
    """SQL: whether a bulk delete that may still be undone holds this record (any batch, not only
    the last one: undo takes any batch of its author within the window). An hour is added to the
    window so that an undo begun just inside it finds what it restores where it was. Here, beside
    the model, so that what keeps deleted records' data (attachments) need not import bulk."""
    cutoff = datetime.now(UTC) - UNDO_WINDOW - PURGE_GRACE
    return exists().where(
        BulkBatch.action == "delete",
        BulkBatch.undone_at.is_(None),
        BulkBatch.created_at > cutoff,
        BulkBatch.record_type == record_type,
        BulkBatch.before["ids"].op("@>")(func.jsonb_build_array(record_id)),
    )
