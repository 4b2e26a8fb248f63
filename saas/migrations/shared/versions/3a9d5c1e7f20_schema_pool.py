"""schema pool: tenant schemas made ahead of sign-ups

Revision ID: 3a9d5c1e7f20
Revises: efb872e8fb5f
Create Date: 2026-11-23 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3a9d5c1e7f20"
down_revision = "efb872e8fb5f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_pool",
        sa.Column("tenant_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("schema_name", sa.String(length=63), nullable=False),
        sa.Column("revision", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_schema_pool")),
        sa.UniqueConstraint("schema_name", name=op.f("uq_schema_pool_schema_name")),
        schema="public",
    )


def downgrade() -> None:
    op.drop_table("schema_pool", schema="public")
