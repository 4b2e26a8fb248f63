"""Shared-schema ("public") models: the tenant registry and everything about logins."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from saas.extensions import db

SHARED = {"schema": "public"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _id() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(), primary_key=True)


class Tenant(db.Model):
    __tablename__ = "tenants"
    __table_args__ = SHARED

    id: Mapped[int] = _id()
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # Set from the id by provisioning, never from user input.
    schema_name: Mapped[str] = mapped_column(String(63), unique=True)
    # Which PostgreSQL cluster holds the schema; one for now, room to spread out.
    cluster: Mapped[str] = mapped_column(String(40), default="default")
    status: Mapped[str] = mapped_column(String(20), default="active")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    locale: Mapped[str] = mapped_column(String(10), default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = SHARED

    id: Mapped[int] = _id()
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locale: Mapped[str | None] = mapped_column(String(10))
    # Bumped on password change: every older session stops working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    last_tenant_id: Mapped[int | None] = mapped_column(BigInteger)
    is_platform_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"), SHARED)

    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("public.users.id", ondelete="CASCADE"), index=True)
    # A built-in role key ("owner", "sales", ...) or "custom:<id>" for a tenant-defined role.
    role: Mapped[str] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship()


class Invitation(db.Model):
    __tablename__ = "invitations"
    __table_args__ = SHARED

    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("public.users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    tenant: Mapped[Tenant] = relationship()


class OneTimeToken(db.Model):
    """Email verification and password reset links: stored hashed, expiring, single use."""

    __tablename__ = "one_time_tokens"
    __table_args__ = SHARED

    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(ForeignKey("public.users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TenantSchemaVersion(db.Model):
    """The tenant track's revision per tenant, so tenants at head cost nothing to upgrade."""

    __tablename__ = "tenant_schema_versions"
    __table_args__ = SHARED

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("public.tenants.id", ondelete="CASCADE"), primary_key=True
    )
    revision: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)


class SchemaPool(db.Model):
    """Empty tenant schemas made ahead of time at head, so a sign-up only has to claim one.

    Each reserves its tenant id from the tenants sequence; its schema is t_<tenant_id>.
    """

    __tablename__ = "schema_pool"
    __table_args__ = SHARED

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    schema_name: Mapped[str] = mapped_column(String(63), unique=True)
    revision: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EmailOutbox(db.Model):
    """Every email the platform sends; the send job works from here so a retry never sends twice."""

    __tablename__ = "email_outbox"
    __table_args__ = SHARED

    id: Mapped[int] = _id()
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    message_id: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


from saas.backups import models as _backups  # noqa: E402,F401
from saas.billing import models as _billing  # noqa: E402,F401
from saas.compliance import models as _compliance  # noqa: E402,F401
