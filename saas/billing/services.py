"""Billing: the trial, the subscription's states, seats, and what Stripe's events change.

States: trialing (14 days from sign-up) -> active (a paid subscription) -> past_due (a payment
failed: a banner and 7 days of grace) -> read_only (no writes, data kept, exports allowed; also when
a trial ends with no subscription) -> cancelled (the subscription ended; read-only too). A paid
invoice brings past_due and read_only back to active; a new Checkout restarts a cancelled one.

Seats: a seat is an active member or an open invitation. The subscription's quantity follows them
(sync_quantity, a job after every seat change); inviting past the paid seats is refused until the
admin adds seats. During the trial there are no paid seats, so inviting is not limited.

Billing is off while STRIPE_SECRET_KEY is empty: seats are unlimited and nothing is ever read-only.
No `request` in here: views, jobs and the platform console call these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import stripe
from flask import current_app, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from saas import audit, tenancy
from saas.accounts import AccountError
from saas.billing import stripe_api
from saas.billing.models import BillingAccount, SeatLedger, StripeEvent
from saas.extensions import db
from saas.models import Invitation, Membership, Tenant

log = logging.getLogger(__name__)

TRIAL_DAYS = 14
GRACE_DAYS = 7
LEDGER_DAYS = 90
MAX_SEATS = 10_000
PLANS = ("monthly", "yearly")
LIVE = ("active", "past_due")  # a subscription is being paid, or its payment retried
LOCKED = ("read_only", "cancelled")  # no writes
SEATS_LOCK_CLASS = 7431103  # advisory lock (class, tenant id): one seat check-and-take at a time


class BillingError(AccountError):
    """A billing action refused, with a message for the admin (already translated)."""


class SeatLimitError(AccountError):
    """Every paid seat is taken: the message links to the billing page, where seats are added."""

    def __init__(self, seats_paid: int, link: str | None) -> None:
        self.seats_paid, self.link = seats_paid, link
        super().__init__(
            _(
                "All %(n)d paid seats are taken by members and open invitations. "
                "Add seats on the billing page first.",
                n=seats_paid,
            )
        )

    def __str__(self) -> str:
        # Markup, so the page that shows the refusal shows the link too (the text itself is escaped).
        text_ = Markup.escape(self.args[0])
        if not self.link:
            return text_
        return Markup('{} <a href="{}" class="alert-link">{}</a>').format(text_, self.link, _("Add seats"))


def enabled() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def now() -> datetime:
    return datetime.now(UTC)


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


# Accounts and their state ------------------------------------------------------------------


def start_trial(tenant_id: int) -> BillingAccount:
    """The 14-day trial of a new workspace: one row in the sign-up's transaction, no call to Stripe."""
    account = BillingAccount(
        tenant_id=tenant_id, state="trialing", trial_ends_at=now() + timedelta(days=TRIAL_DAYS), seats_paid=0
    )
    db.session.add(account)
    return account


def get_account(tenant_id: int, lock: bool = False) -> BillingAccount | None:
    q = select(BillingAccount).where(BillingAccount.tenant_id == tenant_id)
    return db.session.scalar(q.with_for_update() if lock else q)


def _account_for_update(tenant_id: int) -> BillingAccount:
    """The tenant's account, locked; made (trial already over) for a workspace older than billing."""
    account = get_account(tenant_id, lock=True)
    if account is None:
        db.session.execute(
            pg_insert(BillingAccount)
            .values(
                tenant_id=tenant_id, state="trialing", trial_ends_at=now(), seats_paid=0, updated_at=now()
            )
            .on_conflict_do_nothing()
        )
        account = get_account(tenant_id, lock=True)
    return account


def effective_state(account: BillingAccount, at: datetime | None = None) -> str:
    """The state as of now: a trial or a grace period that ran out counts as read-only at once,
    before the daily job writes it down."""
    at = at or now()
    if account.state == "trialing" and account.trial_ends_at <= at:
        return "read_only"
    if account.state == "past_due" and (account.past_due_since or at) + timedelta(days=GRACE_DAYS) <= at:
        return "read_only"
    return account.state


def _days_until(moment: datetime | None, at: datetime) -> int | None:
    if moment is None:
        return None
    seconds = (moment - at).total_seconds()
    return max(0, -int(-seconds // 86400))  # whole days, rounded up


@dataclass(frozen=True)
class Status:
    """What the pages show about a workspace's billing."""

    enabled: bool
    state: str
    plan: str | None
    trial_ends_at: datetime | None
    trial_days_left: int | None
    grace_days_left: int | None
    current_period_end: datetime | None
    seats_paid: int
    has_customer: bool
    has_subscription: bool

    @property
    def writable(self) -> bool:
        return not self.enabled or self.state not in LOCKED

    @property
    def can_checkout(self) -> bool:
        # A subscription that is not over is paid through the portal, never replaced by a second one.
        return self.enabled and (not self.has_subscription or self.state == "cancelled")

    @property
    def can_change_seats(self) -> bool:
        return self.enabled and self.state in LIVE and self.has_subscription


def status(tenant_id: int) -> Status:
    account = get_account(tenant_id)
    at = now()
    if account is None:  # a workspace older than billing that no job has seen yet
        account = BillingAccount(tenant_id=tenant_id, state="trialing", trial_ends_at=at, seats_paid=0)
    state = effective_state(account, at) if enabled() else account.state
    grace_end = account.past_due_since + timedelta(days=GRACE_DAYS) if account.past_due_since else None
    return Status(
        enabled=enabled(),
        state=state,
        plan=account.plan,
        trial_ends_at=account.trial_ends_at,
        trial_days_left=_days_until(account.trial_ends_at, at) if account.state == "trialing" else None,
        grace_days_left=_days_until(grace_end, at) if state == "past_due" else None,
        current_period_end=account.current_period_end,
        seats_paid=account.seats_paid or 0,
        has_customer=bool(account.stripe_customer_id),
        has_subscription=bool(account.stripe_subscription_id),
    )


def writes_refused(tenant_id: int) -> Status | None:
    """The status when billing is on and the workspace may not write now; None otherwise (one query,
    none at all with billing off)."""
    if not enabled():
        return None
    current = status(tenant_id)
    return None if current.writable else current


# Seats --------------------------------------------------------------------------------------


def active_seats(tenant_id: int) -> int:
    return db.session.scalar(
        select(func.count()).where(Membership.tenant_id == tenant_id, Membership.is_active.is_(True))
    )


def open_invitations(tenant_id: int) -> int:
    return db.session.scalar(
        select(func.count()).where(
            Invitation.tenant_id == tenant_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now(),
        )
    )


def seats_taken(tenant_id: int) -> int:
    """Active members plus open invitations: what the subscription's quantity follows."""
    return active_seats(tenant_id) + open_invitations(tenant_id)


def _billing_link(tenant_id: int) -> str | None:
    tenant = db.session.get(Tenant, tenant_id)
    try:
        return url_for("workspace.billing.index", slug=tenant.slug)
    except RuntimeError:  # no request or server name to build it from
        return None


def lock_seats(tenant_id: int) -> None:
    """Hold the tenant's seats until the transaction ends: seats are counted after this, so two admins
    at once cannot both take the last seat (the second one counts after the first one's commit)."""
    db.session.execute(
        text("select pg_advisory_xact_lock(:c, :k)"),
        {"c": SEATS_LOCK_CLASS, "k": int(tenant_id) % 2_147_483_647},
    )


def check_seat_available(tenant_id: int) -> None:
    """Before inviting or reactivating someone: SeatLimitError when every paid seat is taken.

    Only with a live subscription: a trial has no paid seats yet (inviting is not limited), and a
    read-only workspace refuses the write anyway. The caller adds the seat in the same transaction,
    which holds the tenant's seat lock until it commits.
    """
    if not enabled():
        return
    lock_seats(tenant_id)
    account = get_account(tenant_id)
    if account is None or effective_state(account) not in LIVE or not account.stripe_subscription_id:
        return
    if seats_taken(tenant_id) >= account.seats_paid:
        raise SeatLimitError(account.seats_paid, _billing_link(tenant_id))


def seats_changed(tenant_id: int) -> None:
    """Call in the transaction that changes seats: the quantity is synced by a job once it commits."""
    if not enabled():
        return
    from saas.mail import after_commit

    def enqueue_sync() -> None:
        from workers.billing import sync_seats
        from workers.queues import enqueue

        enqueue(sync_seats, tenant_id)

    after_commit(enqueue_sync)


def sync_quantity(tenant_id: int) -> int | None:
    """Set the subscription's quantity to the seats taken now (Stripe prorates); idempotent.
    Returns the quantity, or None when there is no live subscription to follow the seats."""
    if not enabled():
        return None
    account = get_account(tenant_id, lock=True)
    if account is None or not account.stripe_subscription_id or effective_state(account) not in LIVE:
        db.session.rollback()
        return None
    target = max(1, seats_taken(tenant_id))
    stripe_api.set_quantity(account.stripe_subscription_id, target)
    _update(account, "seat change", None, seats_paid=target)
    record_ledger(now().date(), tenant_id)
    db.session.commit()
    return target


def change_seats(tenant_id: int, seats: int) -> BillingAccount:
    """The admin sets the paid seats (to invite more people); Stripe prorates the change."""
    account = _live_account(tenant_id)
    lock_seats(tenant_id)  # no invitation slips in between this count and the new quantity
    taken = seats_taken(tenant_id)
    if seats < max(1, taken):
        raise BillingError(
            _(
                "%(n)d seats are taken by members and open invitations: choose at least that many.",
                n=max(1, taken),
            ),
            "seats",
        )
    if seats > MAX_SEATS:
        raise BillingError(_("Choose at most %(n)d seats.", n=MAX_SEATS), "seats")
    if seats != account.seats_paid:
        try:
            stripe_api.set_quantity(account.stripe_subscription_id, seats)
        except stripe.StripeError as exc:
            raise _stripe_failed(exc) from exc
        _update(account, "seats changed by an admin", None, seats_paid=seats)
    db.session.commit()
    return account


def _live_account(tenant_id: int) -> BillingAccount:
    if not enabled():
        raise BillingError(_("Billing is off: seats are unlimited."))
    account = get_account(tenant_id, lock=True)
    if account is None or not account.stripe_subscription_id or effective_state(account) not in LIVE:
        raise BillingError(_("Start a subscription first."))
    return account


def _stripe_failed(exc: stripe.StripeError) -> BillingError:
    log.warning("stripe call failed: %s", exc)
    db.session.rollback()
    return BillingError(_("Stripe could not be reached or refused the request. Try again in a minute."))


# Checkout and the customer portal -----------------------------------------------------------


def start_checkout(tenant_id: int, plan: str, email: str, success_url: str, cancel_url: str) -> str:
    """The Stripe Checkout URL for a per-seat subscription (the customer is made on first use)."""
    if not enabled():
        raise BillingError(_("Billing is off: seats are unlimited."))
    if plan not in PLANS:
        raise BillingError(_("Choose monthly or yearly."), "plan")
    price = current_app.config.get("STRIPE_PRICE_MONTHLY" if plan == "monthly" else "STRIPE_PRICE_YEARLY")
    if not price:
        raise BillingError(_("This plan is not on sale yet."), "plan")
    account = _account_for_update(tenant_id)
    if account.stripe_subscription_id and account.state != "cancelled":
        raise BillingError(
            _(
                "This workspace has a subscription already: pay for it or change it with Manage cards and invoices."
            )
        )
    try:
        if not account.stripe_customer_id:
            tenant = db.session.get(Tenant, tenant_id)
            customer = stripe_api.create_customer(tenant.name, email, tenant_id)
            _update(account, "Stripe customer made", None, stripe_customer_id=customer)
            db.session.commit()  # keep the customer even if the session below fails
        quantity = max(1, seats_taken(tenant_id))
        url = stripe_api.create_checkout_session(
            account.stripe_customer_id, price, quantity, tenant_id, success_url, cancel_url
        )
    except stripe.StripeError as exc:
        raise _stripe_failed(exc) from exc
    with _bound(tenant_id):
        audit.record(
            "checkout_started", "billing", tenant_id, {"plan": [None, plan], "seats": [None, quantity]}
        )
    db.session.commit()
    return url


def portal_url(tenant_id: int, return_url: str) -> str:
    if not enabled():
        raise BillingError(_("Billing is off: seats are unlimited."))
    account = get_account(tenant_id)
    if account is None or not account.stripe_customer_id:
        raise BillingError(_("Start a subscription first."))
    try:
        return stripe_api.create_portal_session(account.stripe_customer_id, return_url)
    except stripe.StripeError as exc:
        raise _stripe_failed(exc) from exc


# Changes, audited in the tenant's log --------------------------------------------------------


@contextmanager
def _bound(tenant_id: int) -> Iterator[None]:
    """The tenant bound (for its audit log), unless it already is."""
    current = tenancy.current_tenant()
    if current is not None and current.id == tenant_id:
        yield
        return
    tenant = db.session.get(Tenant, tenant_id)
    with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
        yield


def _update(account: BillingAccount, source: str, at: datetime | None, **values: Any) -> None:
    changes = {
        k: [_plain(getattr(account, k)), _plain(v)] for k, v in values.items() if getattr(account, k) != v
    }
    for key, value in values.items():
        setattr(account, key, value)
    if at is not None and (account.last_event_at is None or at > account.last_event_at):
        account.last_event_at = at
    if changes:
        db.session.flush()
        with _bound(account.tenant_id):
            audit.record("billing", "billing", account.tenant_id, changes, summary=source)


# Stripe events ------------------------------------------------------------------------------


def receive_event(event_id: str, event_type: str, payload: dict[str, Any]) -> bool:
    """Store a verified event once. True when it still needs processing (new, or not yet done);
    a replay of a processed event is False, so it is acknowledged and not processed again."""
    inserted = db.session.execute(
        pg_insert(StripeEvent)
        .values(id=event_id, type=event_type, payload=payload, received_at=now())
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    ).scalar()
    pending = inserted is not None or (
        db.session.scalar(select(StripeEvent.processed_at).where(StripeEvent.id == event_id)) is None
    )
    db.session.commit()
    return pending


def process_event(event_id: str) -> str:
    """Apply a stored event, once (the row is locked, and marked processed in the same commit)."""
    event = db.session.scalar(select(StripeEvent).where(StripeEvent.id == event_id).with_for_update())
    if event is None or event.processed_at is not None:
        db.session.rollback()
        return "skipped"
    handler = HANDLERS.get(event.type)
    tenant_id = handler(event.payload) if handler and enabled() else None
    event.tenant_id = tenant_id
    event.processed_at = now()
    db.session.commit()
    return "applied" if tenant_id else "ignored"


def _ref(value: Any) -> str | None:
    """An id, whether Stripe sent it bare or expanded into an object."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def _account_by_customer(customer: Any) -> BillingAccount | None:
    customer_id = _ref(customer)
    if not customer_id:
        return None
    return db.session.scalar(
        select(BillingAccount).where(BillingAccount.stripe_customer_id == customer_id).with_for_update()
    )


def _stale(account: BillingAccount, at: datetime) -> bool:
    """Stripe does not promise order: an event older than the newest one applied changes nothing."""
    return account.last_event_at is not None and at < account.last_event_at


def _state_from_stripe(account: BillingAccount, stripe_status: str | None, at: datetime) -> dict[str, Any]:
    if stripe_status in ("active", "trialing"):
        return {"state": "active", "past_due_since": None}
    if stripe_status in ("past_due", "unpaid"):
        if effective_state(account, at) == "read_only" and account.state in ("read_only", "past_due"):
            return {}  # the grace is over; only a paid invoice reopens the workspace
        return {"state": "past_due", "past_due_since": account.past_due_since or at}
    if stripe_status in ("canceled", "incomplete_expired"):
        return {"state": "cancelled", "past_due_since": None}
    return {}  # incomplete, paused: wait for the outcome


def _apply_subscription(account: BillingAccount, sub: dict[str, Any], at: datetime, source: str) -> None:
    summary = stripe_api.summary(sub)
    values: dict[str, Any] = {
        "stripe_subscription_id": summary["id"],
        "seats_paid": summary["quantity"],
        "current_period_end": _ts(summary["current_period_end"]),
        **_state_from_stripe(account, summary["status"], at),
    }
    if summary["plan"]:
        values["plan"] = summary["plan"]
    _update(account, source, at, **values)


def _on_checkout_completed(payload: dict[str, Any]) -> int | None:
    session = payload["data"]["object"]
    at = _ts(payload.get("created")) or now()
    if session.get("mode") != "subscription" or not _ref(session.get("subscription")):
        return None
    raw_id = session.get("client_reference_id") or (session.get("metadata") or {}).get("tenant_id") or ""
    if not str(raw_id).isdigit():
        return None
    account = get_account(int(raw_id), lock=True)
    # The customer was made for this tenant when its admin started Checkout: a session naming
    # another tenant's id with this customer (or none) changes nothing.
    if (
        account is None
        or not account.stripe_customer_id
        or account.stripe_customer_id != _ref(session.get("customer"))
    ):
        log.warning("checkout session %s does not match tenant %s", session.get("id"), raw_id)
        return None
    sub = stripe_api.subscription(_ref(session["subscription"]))
    if _ref(sub.get("customer")) != account.stripe_customer_id:
        return None
    _apply_subscription(account, sub, at, f"Stripe {payload.get('id')}: checkout completed")
    return account.tenant_id


def _on_subscription_changed(payload: dict[str, Any]) -> int | None:
    sub = payload["data"]["object"]
    at = _ts(payload.get("created")) or now()
    account = _account_by_customer(sub.get("customer"))
    if account is None:
        return None
    current = account.stripe_subscription_id
    if current not in (None, sub.get("id")) and account.state != "cancelled":
        return account.tenant_id  # another (older) subscription of the customer's
    if not _stale(account, at):
        _apply_subscription(account, sub, at, f"Stripe {payload.get('id')}: {payload.get('type')}")
    return account.tenant_id


def _on_subscription_deleted(payload: dict[str, Any]) -> int | None:
    sub = payload["data"]["object"]
    at = _ts(payload.get("created")) or now()
    account = _account_by_customer(sub.get("customer"))
    if account is None or account.stripe_subscription_id != sub.get("id"):
        return None
    _update(
        account, f"Stripe {payload.get('id')}: subscription ended", at, state="cancelled", past_due_since=None
    )
    return account.tenant_id


def _invoice_account(payload: dict[str, Any]) -> tuple[BillingAccount | None, datetime]:
    invoice = payload["data"]["object"]
    at = _ts(payload.get("created")) or now()
    account = _account_by_customer(invoice.get("customer"))
    # The subscription moved under parent.subscription_details in newer API versions.
    sub_id = _ref(invoice.get("subscription")) or _ref(
        ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    if account is None or not account.stripe_subscription_id:
        return None, at
    if sub_id and sub_id != account.stripe_subscription_id:
        return None, at
    return account, at


def _on_invoice_paid(payload: dict[str, Any]) -> int | None:
    account, at = _invoice_account(payload)
    if account is None:
        return None
    if account.state in ("active", "past_due", "read_only") and not _stale(account, at):
        _update(account, f"Stripe {payload.get('id')}: invoice paid", at, state="active", past_due_since=None)
    return account.tenant_id


def _on_invoice_failed(payload: dict[str, Any]) -> int | None:
    account, at = _invoice_account(payload)
    if account is None:
        return None
    if account.state in LIVE and not _stale(account, at):
        since = account.past_due_since or at
        _update(
            account, f"Stripe {payload.get('id')}: payment failed", at, state="past_due", past_due_since=since
        )
    return account.tenant_id


HANDLERS = {
    "checkout.session.completed": _on_checkout_completed,
    "customer.subscription.created": _on_subscription_changed,
    "customer.subscription.updated": _on_subscription_changed,
    "customer.subscription.deleted": _on_subscription_deleted,
    "invoice.paid": _on_invoice_paid,
    "invoice.payment_failed": _on_invoice_failed,
}


# The daily job's work -----------------------------------------------------------------------


def record_ledger(day: date, tenant_id: int | None = None) -> int:
    """Upsert the day's ledger row of every tenant (or one): the most active members seen that day,
    and the paid seats of a live subscription. Idempotent; shared tables only."""
    result = db.session.execute(
        text(
            """
            insert into public.seat_ledger (tenant_id, day, seats, seats_paid, recorded_at)
            select t.id, :day,
                   (select count(*) from public.memberships m where m.tenant_id = t.id and m.is_active),
                   case when a.state in ('active', 'past_due') then a.seats_paid end,
                   now()
            from public.tenants t
            left join public.billing_accounts a on a.tenant_id = t.id
            where t.status <> 'deleted' and (cast(:tenant_id as bigint) is null or t.id = :tenant_id)
            on conflict (tenant_id, day) do update
               set seats = greatest(public.seat_ledger.seats, excluded.seats),
                   seats_paid = excluded.seats_paid,
                   recorded_at = excluded.recorded_at
            """
        ),
        {"day": day, "tenant_id": tenant_id},
    )
    return result.rowcount


def expire_overdue() -> list[int]:
    """Past due beyond the grace, or a trial over with no subscription: read-only. One tenant per
    transaction; returns the tenants moved."""
    if not enabled():
        return []
    at = now()
    candidates = db.session.scalars(
        select(BillingAccount.tenant_id).where(
            (
                (BillingAccount.state == "past_due")
                & (BillingAccount.past_due_since <= at - timedelta(days=GRACE_DAYS))
            )
            | ((BillingAccount.state == "trialing") & (BillingAccount.trial_ends_at <= at))
        )
    ).all()
    db.session.rollback()
    moved = []
    for tenant_id in candidates:
        account = get_account(tenant_id, lock=True)
        if (
            account is not None
            and account.state != "read_only"
            and effective_state(account, at) == "read_only"
        ):
            reason = "grace period over" if account.state == "past_due" else "trial over"
            _update(account, reason, None, state="read_only")
            moved.append(tenant_id)
        db.session.commit()
    return moved


def live_subscriptions() -> list[int]:
    """Tenants whose subscription's quantity follows their seats."""
    return list(
        db.session.scalars(
            select(BillingAccount.tenant_id).where(
                BillingAccount.state.in_(LIVE), BillingAccount.stripe_subscription_id.is_not(None)
            )
        )
    )


# Pages and the platform console -------------------------------------------------------------


def ledger(tenant_id: int, days: int = LEDGER_DAYS) -> list[SeatLedger]:
    since = now().date() - timedelta(days=days - 1)
    return list(
        db.session.scalars(
            select(SeatLedger)
            .where(SeatLedger.tenant_id == tenant_id, SeatLedger.day >= since)
            .order_by(SeatLedger.day.desc())
        )
    )


def summaries(tenant_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For the platform console: {tenant id: {plan, state, seats_used, seats_paid, trial_ends_at}}.

    The state is as of now (a lapsed trial or grace reads read_only); with billing off it is the
    recorded one, and seats are unlimited whatever it says. Two queries, whatever the number of ids.
    """
    if not tenant_ids:
        return {}
    accounts = {
        a.tenant_id: a
        for a in db.session.scalars(select(BillingAccount).where(BillingAccount.tenant_id.in_(tenant_ids)))
    }
    used = dict(
        db.session.execute(
            select(Membership.tenant_id, func.count())
            .where(Membership.tenant_id.in_(tenant_ids), Membership.is_active.is_(True))
            .group_by(Membership.tenant_id)
        ).all()
    )
    on, at = enabled(), now()
    out: dict[int, dict[str, Any]] = {}
    for tenant_id in tenant_ids:
        account = accounts.get(tenant_id)
        out[tenant_id] = {
            "plan": account.plan if account else None,
            "state": (effective_state(account, at) if on else account.state) if account else None,
            "seats_used": used.get(tenant_id, 0),
            "seats_paid": account.seats_paid if account else 0,
            "trial_ends_at": account.trial_ends_at if account else None,
        }
    return out
