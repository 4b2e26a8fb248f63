"""Tenant-schema models of the lists: saved views and the undo record of bulk actions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, text
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
