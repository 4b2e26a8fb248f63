"""emails sent from the CRM

Revision ID: 7d2c9e410002
Revises: 7d2c9e410001
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from saas.migrate import tenant_schema

revision = "7d2c9e410002"
down_revision = "7d2c9e410001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An email on the timeline: its recipient, the shared outbox row carrying it, and its status.
    op.add_column(
        "activities", sa.Column("email_to", sa.String(length=254), nullable=True), schema=tenant_schema()
    )
    op.add_column(
        "activities", sa.Column("outbox_id", sa.BigInteger(), nullable=True), schema=tenant_schema()
    )
    op.add_column(
        "activities", sa.Column("email_status", sa.String(length=20), nullable=True), schema=tenant_schema()
    )
    op.create_index(
        "ix_activities_outbox_id", "activities", ["outbox_id"], unique=True, schema=tenant_schema()
    )


def downgrade() -> None:
    op.drop_index("ix_activities_outbox_id", table_name="activities", schema=tenant_schema())
    op.drop_column("activities", "email_status", schema=tenant_schema())
    op.drop_column("activities", "outbox_id", schema=tenant_schema())
    op.drop_column("activities", "email_to", schema=tenant_schema())
