"""Housekeeping jobs of the platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_

from workers.context import job_context


def purge_expired_links(older_than_days: int = 30) -> int:
    """Drop one-time links that expired or were used over a month ago (idempotent)."""
    from saas.extensions import db
    from saas.models import OneTimeToken

    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    with job_context():
        result = db.session.execute(
            delete(OneTimeToken).where(or_(OneTimeToken.expires_at < cutoff, OneTimeToken.used_at < cutoff))
        )
        db.session.commit()
        return result.rowcount


def refill_schema_pool(size: int | None = None) -> int:
    """Top the pool of ready tenant schemas up to SCHEMA_POOL_SIZE (idempotent: never past the size)."""
    from flask import current_app

    from saas.extensions import db
    from saas.migrate import fill_schema_pool

    with job_context():
        target = current_app.config["SCHEMA_POOL_SIZE"] if size is None else size
        return fill_schema_pool(db.engine, target)
