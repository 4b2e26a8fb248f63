"""compliance: consent ledger, erasures

Revision ID: 7d2c9e410003
Revises: 7d2c9e410002
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from saas.migrate import tenant_schema

revision = "7d2c9e410003"
down_revision = "7d2c9e410002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("how", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            [tenant_schema() + ".contacts.id"],
            name=op.f("fk_consent_events_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
        schema=tenant_schema(),
    )
    op.create_index(
        "ix_consent_events_contact_id",
        "consent_events",
        ["contact_id", "id"],
        unique=False,
        schema=tenant_schema(),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("subject_kind", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
        schema=tenant_schema(),
    )
    op.create_index(
        "ix_erasures_subject",
        "erasures",
        ["subject_kind", "subject_id"],
        unique=False,
        schema=tenant_schema(),
    )
    op.create_table(
        "privacy_settings",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("contact_months", sa.Integer(), nullable=False),
        sa.Column("audit_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_settings")),
        schema=tenant_schema(),
    )


def downgrade() -> None:
    op.drop_table("privacy_settings", schema=tenant_schema())
    op.drop_index("ix_erasures_subject", table_name="erasures", schema=tenant_schema())
    op.drop_table("erasures", schema=tenant_schema())
    op.drop_index("ix_consent_events_contact_id", table_name="consent_events", schema=tenant_schema())
    op.drop_table("consent_events", schema=tenant_schema())
