"""Tenant-schema model of the API: personal tokens.

A token lives in the schema of the workspace it was made in, so it can only
ever be found (and work) under that workspace's URL. Only its SHA-256 is
stored; the token itself is shown once, when it is made.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import utcnow
from tenants.base import TENANT, id_column


class ApiToken(db.Model):
    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("ix_api_tokens_token_hash", "token_hash", unique=True),
        Index("ix_api_tokens_user_id", "user_id"),
        TENANT,
    )

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(BigInteger)  # a user of the shared schema (no FK across schemas)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the whole token
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
