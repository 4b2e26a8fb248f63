"""The shared `backups` table: one row per backup of one tenant, whatever its state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import SHARED, _id, utcnow

KINDS = ("daily", "weekly", "monthly", "manual")
# queued -> running -> verifying -> good | failed; only "good" backups may be restored.
STATUSES = ("queued", "running", "verifying", "good", "failed")


class Backup(db.Model):
    __tablename__ = "backups"
    __table_args__ = SHARED

    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # Made by services.new_key for each attempt, never from user input.
    storage_key: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Per-table rows and checksums, files and the schema revision (the signed manifest, less the file list).
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    requested_by: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
