"""POST /billing/stripe/webhook: Stripe's events, verified, stored once, processed by a job.

The only route exempt from CSRF: Stripe's signature over the raw body stands in for it. A replayed
event is acknowledged (200) and not processed again.
"""

from __future__ import annotations

import json
import logging

import stripe
from flask import Blueprint, abort, current_app, jsonify, request

from saas.billing import services, stripe_api
from saas.extensions import csrf

log = logging.getLogger(__name__)

bp = Blueprint("stripe_webhook", __name__)
csrf.exempt(bp)
MAX_BODY = 1024 * 1024  # Stripe's events are a few kB


@bp.post("/billing/stripe/webhook")
def receive():  # noqa: ANN201
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret or not services.enabled():
        abort(404)
    request.max_content_length = MAX_BODY  # more is refused with 413 before it is read
    payload = request.get_data(cache=False)  # the raw bytes: the signature is over them, not over parsed JSON
    try:
        event = stripe_api.construct_event(payload, request.headers.get("Stripe-Signature", ""), secret)
        body = json.loads(payload)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        log.warning("stripe webhook refused: %s", exc)
        return jsonify(error="invalid signature or payload"), 400
    if services.receive_event(event.id, event.type, body):
        from workers.billing import process_stripe_event
        from workers.queues import enqueue

        enqueue(process_stripe_event, event.id, queue_name="high")
        return jsonify(received=True)
    return jsonify(received=True, duplicate=True)
