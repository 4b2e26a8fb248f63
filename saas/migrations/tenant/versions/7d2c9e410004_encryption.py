"""encryption of sensitive fields

Revision ID: 7d2c9e410004
Revises: 7d2c9e410003
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from saas.migrate import tenant_schema

revision = "7d2c9e410004"
down_revision = "7d2c9e410003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    # No new index: exact-value filters on a sensitive field use the blind index inside the record's
    # `custom` JSONB ({"key": {"enc": ..., "bi": ...}}), through the GIN (jsonb_path_ops) index the
    # companies and contacts tables already have.
    op.add_column(
        "custom_fields",
        sa.Column("sensitive", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        schema=tenant_schema(),
    )


def downgrade() -> None:
    op.drop_column("custom_fields", "sensitive", schema=tenant_schema())
