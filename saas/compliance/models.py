"""Compliance tables.

Shared schema: export requests (one person's data or a whole tenant, made by a job) and tenant
deletion requests (they must outlive the tenant's schema, which the deletion drops).
Tenant schema: the record of erasures (the fact, never the data) and the data-retention setting.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import SHARED, _id, utcnow
from tenants.base import TENANT, id_column

# queued -> running -> done | failed; done -> expired (the file is purged after the link's lifetime)
EXPORT_STATUSES = ("queued", "running", "done", "failed", "expired")
# pending -> cancelled | done
DELETION_STATUSES = ("pending", "cancelled", "done")


class PrivacyExport(db.Model):
    """One export: of a person (kind contact / staff_user / portal_user) or of the whole tenant."""

    __tablename__ = "privacy_exports"
    __table_args__ = (Index("ix_privacy_exports_tenant_id", "tenant_id", "id"), SHARED)

    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("public.users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # Made from the request id, never from input: "compliance/<tenant id>/<export id>.zip".
    storage_key: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TenantDeletion(db.Model):
    """An owner's request to delete the whole tenant, carried out by a job once the grace period ends."""

    __tablename__ = "tenant_deletions"
    __table_args__ = (
        # At most one pending request per tenant.
        Index(
            "ix_tenant_deletions_pending",
            "tenant_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_tenant_deletions_due_at", "due_at"),
        SHARED,
    )

    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("public.users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("public.users.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the job did (tables dropped, files deleted): the record that outlives the schema.
    summary: Mapped[str] = mapped_column(Text, default="")


class Erasure(db.Model):
    """That a person's data was erased, when, by whom and what was touched (counts, never values)."""

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_subject", "subject_kind", "subject_id"), TENANT)

    id: Mapped[int] = id_column()
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(20), default="request")  # request / retention
    by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    summary: Mapped[dict] = mapped_column(JSONB, default=dict)


class PrivacySettings(db.Model):
    """The workspace's data-retention rule (one row; 0 turns a part off)."""

    __tablename__ = "privacy_settings"
    __table_args__ = TENANT

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1, autoincrement=False)
    # Erase contacts nobody has touched (no update, timeline entry or task) for this many months.
    contact_months: Mapped[int] = mapped_column(Integer, default=0)
    # Delete audit log entries older than this many days.
    audit_days: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
