"""billing: subscriptions, Stripe events, seat ledger

Revision ID: 4b1e5a7c0001
Revises: 3a9d5c1e7f20
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "4b1e5a7c0001"
down_revision = "3a9d5c1e7f20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("tenant_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("plan", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("trial_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("past_due_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seats_paid", sa.Integer(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name=op.f("fk_billing_accounts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_billing_accounts_stripe_customer_id")),
        sa.UniqueConstraint(
            "stripe_subscription_id", name=op.f("uq_billing_accounts_stripe_subscription_id")
        ),
        schema="public",
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
        schema="public",
    )
    op.create_index(
        op.f("ix_stripe_events_tenant_id"), "stripe_events", ["tenant_id"], unique=False, schema="public"
    )
    op.create_table(
        "seat_ledger",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("seats_paid", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name=op.f("fk_seat_ledger_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_ledger")),
        sa.UniqueConstraint("tenant_id", "day", name=op.f("uq_seat_ledger_tenant_id")),
        schema="public",
    )
    # Workspaces made before billing existed start their 14-day trial now.
    op.execute(
        "insert into public.billing_accounts (tenant_id, state, trial_ends_at, seats_paid, updated_at)"
        " select id, 'trialing', now() + interval '14 days', 0, now() from public.tenants"
        " where status <> 'deleted'"
    )


def downgrade() -> None:
    op.drop_table("seat_ledger", schema="public")
    op.drop_index(op.f("ix_stripe_events_tenant_id"), table_name="stripe_events", schema="public")
    op.drop_table("stripe_events", schema="public")
    op.drop_table("billing_accounts", schema="public")
