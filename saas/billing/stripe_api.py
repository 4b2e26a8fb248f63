"""The one place that talks to Stripe: a client from the app's config, and plain-dict answers.

StripeClient (not the module-level globals) so each app's key and API base stay its own; the
answers are turned into dicts because a StripeObject is not one in stripe-python 16.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import stripe
from flask import current_app


@lru_cache(maxsize=4)
def _client(key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": api_base} if api_base else None, max_network_retries=2
    )


def client() -> stripe.StripeClient:
    cfg = current_app.config
    return _client(cfg["STRIPE_SECRET_KEY"], cfg.get("STRIPE_API_BASE") or "")


def create_customer(name: str, email: str, tenant_id: int) -> str:
    customer = client().v1.customers.create(
        params={"name": name, "email": email, "metadata": {"tenant_id": str(tenant_id)}}
    )
    return customer.id


def create_checkout_session(
    customer: str, price: str, quantity: int, tenant_id: int, success_url: str, cancel_url: str
) -> str:
    """A Checkout session for a per-seat subscription; returns the URL to send the admin to."""
    session = client().v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": str(tenant_id),
            "metadata": {"tenant_id": str(tenant_id)},
            "subscription_data": {"metadata": {"tenant_id": str(tenant_id)}},
            "line_items": [{"price": price, "quantity": quantity}],
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    return session.url


def create_portal_session(customer: str, return_url: str) -> str:
    session = client().v1.billing_portal.sessions.create(
        params={"customer": customer, "return_url": return_url}
    )
    return session.url


def subscription(subscription_id: str) -> dict[str, Any]:
    return client().v1.subscriptions.retrieve(subscription_id).to_dict()


def set_quantity(subscription_id: str, quantity: int) -> dict[str, Any]:
    """Change the seats of a one-item subscription. Stripe prorates quantity changes by default
    (proration_behavior=create_prorations), so the parameter is left to that default."""
    sub = subscription(subscription_id)
    item = sub["items"]["data"][0]
    if item.get("quantity") == quantity:
        return sub
    return (
        client()
        .v1.subscriptions.update(
            subscription_id, params={"items": [{"id": item["id"], "quantity": quantity}]}
        )
        .to_dict()
    )


def construct_event(payload: bytes, signature: str, secret: str) -> stripe.Event:
    """The event, if Stripe's signature over the raw body checks out (else ValueError or
    stripe.SignatureVerificationError)."""
    return stripe.Webhook.construct_event(payload, signature, secret)


def summary(sub: dict[str, Any]) -> dict[str, Any]:
    """What we keep of a subscription, whichever API version shaped it: newer versions carry the
    period on the item and the interval on its price; older ones (and localstripe) on the plan."""
    item = (sub.get("items") or {}).get("data", [{}])[0]
    recurring = (item.get("price") or {}).get("recurring") or {}
    interval = recurring.get("interval") or (item.get("plan") or {}).get("interval")
    return {
        "id": sub["id"],
        "customer": sub.get("customer"),
        "status": sub.get("status"),
        "quantity": item.get("quantity") or sub.get("quantity") or 0,
        "plan": {"month": "monthly", "year": "yearly"}.get(interval or ""),
        "current_period_end": item.get("current_period_end") or sub.get("current_period_end"),
    }
