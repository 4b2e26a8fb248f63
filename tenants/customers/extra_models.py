"""Tenant-schema models of attachments and of the "no contact in N days" reminder rule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import utcnow
from tenants.base import TENANT, id_column


class Attachment(db.Model):
    """A file on any record, by (record_type, record_id); the bytes live in S3 or the instance folder."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_record", "record_type", "record_id", "id"), TENANT)

    id: Mapped[int] = id_column()
    record_type: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger)
    # Made by the server (never from the file name): "<tenant id>/<uuid>".
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    uploaded_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReminderRule(db.Model):
    """The workspace's "no contact with a customer in N days -> a task for its owner" rule (one row)."""

    __tablename__ = "reminder_rules"
    __table_args__ = TENANT

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1, autoincrement=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    days: Mapped[int] = mapped_column(Integer, default=30)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)


class RuleTask(db.Model):
    """A task the reminder rule made for a company: the rule makes no second one while it is open."""

    __tablename__ = "rule_tasks"
    __table_args__ = (Index("ix_rule_tasks_company_id", "company_id"), TENANT)

    task_id: Mapped[int] = mapped_column(ForeignKey("tenant.tasks.id", ondelete="CASCADE"), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("tenant.companies.id", ondelete="CASCADE"))
