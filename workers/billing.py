"""Billing jobs: Stripe events, the subscription's quantity after a seat change, and the daily round
(seat ledger, grace and trial ends). See saas.billing.services for the rules."""

from __future__ import annotations

from datetime import date

from workers.context import job_context
from workers.queues import enqueue


def process_stripe_event(event_id: str) -> str:
    """Apply one stored Stripe event; a second run (retry, replay) finds it processed and does nothing."""
    from saas.billing import services

    with job_context():
        return services.process_event(event_id)


def sync_seats(tenant_id: int) -> int | None:
    """Set the tenant's subscription quantity to its seats now (idempotent: the count is read here)."""
    from saas.billing import services

    with job_context(tenant_id, allow_suspended=True):  # billing stays right while suspended
        return services.sync_quantity(tenant_id)


def daily_billing(day: str | None = None) -> dict[str, int]:
    """Periodic (daily): the seat ledger row of every tenant for the day, read-only for a grace or a
    trial that ran out, and a quantity check of every live subscription (heals a lost sync)."""
    from saas.billing import services
    from saas.extensions import db

    with job_context():
        the_day = date.fromisoformat(day) if day else services.now().date()
        rows = services.record_ledger(the_day)
        db.session.commit()
        moved = services.expire_overdue()
        live = services.live_subscriptions() if services.enabled() else []
    for tenant_id in live:
        enqueue(sync_seats, tenant_id, queue_name="low")
    return {"ledger_rows": rows, "read_only": len(moved), "synced": len(live)}
