"""Tenant tables of imports: one row per import, and one row per record an import created or updated."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import utcnow
from tenants.base import TENANT, id_column

# uploaded -> checked (dry run done) -> queued -> running -> done | failed; done -> undone
STATUSES = ("uploaded", "checked", "queued", "running", "done", "failed", "undone")


class Import(db.Model):
    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_created_at", "created_at", "id"), TENANT)

    id: Mapped[int] = id_column()
    record_type: Mapped[str] = mapped_column(String(20))  # contact / company
    status: Mapped[str] = mapped_column(String(20), default="uploaded")
    file_name: Mapped[str] = mapped_column(String(255))  # as the person named it: shown, never a path
    file_format: Mapped[str] = mapped_column(String(10))  # csv / xlsx
    encoding: Mapped[str | None] = mapped_column(String(30))
    # Made by the server: "<tenant id>/<uuid>.<ext>" under the instance folder's imports/.
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    headers: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    mapping: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 3, "column": "Email", "reason": "...", "values": [...]}], in row order
    errors: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    message: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportRecord(db.Model):
    """A record an import wrote: previous is None when it created it, else the values it replaced."""

    __tablename__ = "import_records"
    __table_args__ = (Index("ix_import_records_import", "import_id", "record_type"), TENANT)

    id: Mapped[int] = id_column()
    import_id: Mapped[int] = mapped_column(ForeignKey("tenant.imports.id", ondelete="CASCADE"))
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(BigInteger)
    previous: Mapped[dict | None] = mapped_column(JSONB)
