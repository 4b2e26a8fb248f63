"""Shared-schema billing tables: one account per tenant, the Stripe events received, the seat ledger."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from saas.extensions import db
from saas.models import SHARED, _id, utcnow

# trialing -> active -> past_due -> read_only -> cancelled (see saas.billing.services).
STATES = ("trialing", "active", "past_due", "read_only", "cancelled")


class BillingAccount(db.Model):
    """A tenant's subscription as we know it (Stripe is the source of truth; webhooks keep this in step)."""

    __tablename__ = "billing_accounts"
    __table_args__ = SHARED

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("public.tenants.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    plan: Mapped[str | None] = mapped_column(String(20))  # "monthly" or "yearly"
    state: Mapped[str] = mapped_column(String(20), default="trialing")
    trial_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seats_paid: Mapped[int] = mapped_column(Integer, default=0)  # the subscription's quantity
    # When the newest Stripe event applied here was created: an older one arriving late changes nothing.
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class StripeEvent(db.Model):
    """Every webhook event received, once: the id is the key, so a replay is recognised."""

    __tablename__ = "stripe_events"
    __table_args__ = SHARED

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict] = mapped_column(JSONB)
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # known once processed
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SeatLedger(db.Model):
    """Seats per tenant per day (the metering record): the most active members seen that day."""

    __tablename__ = "seat_ledger"
    __table_args__ = (UniqueConstraint("tenant_id", "day"), SHARED)

    id: Mapped[int] = _id()
    tenant_id: Mapped[int] = mapped_column(ForeignKey("public.tenants.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    seats: Mapped[int] = mapped_column(Integer)
    seats_paid: Mapped[int | None] = mapped_column(Integer)  # the subscription's quantity, if one is live
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
