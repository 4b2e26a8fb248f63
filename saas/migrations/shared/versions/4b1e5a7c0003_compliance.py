"""compliance exports, tenant deletion

Revision ID: 4b1e5a7c0003
Revises: 4b1e5a7c0002
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "4b1e5a7c0003"
down_revision = "4b1e5a7c0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_exports",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["public.users.id"],
            name=op.f("fk_privacy_exports_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name=op.f("fk_privacy_exports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_exports")),
        schema="public",
    )
    op.create_index(
        "ix_privacy_exports_tenant_id", "privacy_exports", ["tenant_id", "id"], unique=False, schema="public"
    )
    op.create_table(
        "tenant_deletions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_by", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cancelled_by"],
            ["public.users.id"],
            name=op.f("fk_tenant_deletions_cancelled_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["public.users.id"],
            name=op.f("fk_tenant_deletions_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name=op.f("fk_tenant_deletions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_deletions")),
        schema="public",
    )
    op.create_index(
        "ix_tenant_deletions_pending",
        "tenant_deletions",
        ["tenant_id"],
        unique=True,
        schema="public",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_tenant_deletions_due_at", "tenant_deletions", ["due_at"], unique=False, schema="public"
    )


def downgrade() -> None:
    op.drop_index("ix_tenant_deletions_due_at", table_name="tenant_deletions", schema="public")
    op.drop_index("ix_tenant_deletions_pending", table_name="tenant_deletions", schema="public")
    op.drop_table("tenant_deletions", schema="public")
    op.drop_index("ix_privacy_exports_tenant_id", table_name="privacy_exports", schema="public")
    op.drop_table("privacy_exports", schema="public")
