"""Per-seat billing against a real Stripe-compatible server (localstripe, started here).

localstripe speaks customers, plans, subscriptions (quantity changes too), invoices and signed
webhooks, but not Checkout or the customer portal: for those, a small HTTP proxy in front of it
records the exact request the stripe library sends and answers it; everything else it passes on.
Webhooks are signed with Stripe's real scheme and checked by stripe.Webhook.construct_event.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from tests.conftest import free_port
from tests.factories import (
    PASSWORD,
    CsrfClient,
    TenantInfo,
    add_member,
    db_state,
    run_jobs,
    sql_value,
    unique,
)

SECRET_KEY = "sk_test_gw_billing"
WEBHOOK_SECRET = "whsec_test_billing"
MONTHLY, YEARLY = "plan_seat_monthly", "plan_seat_yearly"


# A Stripe-compatible server, and a recorder in front of it ------------------------------------


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 20) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"localstripe exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("localstripe did not start")


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory):
    """localstripe on a free port (a fresh store); yields its base URL."""
    port = free_port()
    exe = Path(sys.executable).parent / "localstripe"
    log = (tmp_path_factory.mktemp("localstripe") / "log.txt").open("w")
    proc = subprocess.Popen(
        [str(exe), "--port", str(port), "--from-scratch"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        direct = stripe.StripeClient(SECRET_KEY, base_addresses={"api": base})
        product = direct.v1.products.create(params={"name": "CRM seat", "type": "service"})
        for plan_id, interval in ((MONTHLY, "month"), (YEARLY, "year")):
            direct.v1.plans.create(
                params={
                    "id": plan_id,
                    "product": product.id,
                    "amount": 1200 if interval == "month" else 12000,
                    "currency": "usd",
                    "interval": interval,
                }
            )
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


class Recorder:
    """An HTTP server that records every request; Checkout and portal sessions it answers itself
    (localstripe has neither), the rest it forwards to localstripe."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.requests: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": path,
                        "form": dict(parse_qsl(body.decode(), keep_blank_values=True)),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                if self.command == "POST" and path == "/v1/checkout/sessions":
                    sid = f"cs_test_{uuid.uuid4().hex[:12]}"
                    answer = {
                        "id": sid,
                        "object": "checkout.session",
                        "url": f"https://checkout.test/pay/{sid}",
                    }
                    return self._reply(200, json.dumps(answer).encode())
                if self.command == "POST" and path == "/v1/billing_portal/sessions":
                    sid = f"bps_{uuid.uuid4().hex[:12]}"
                    answer = {
                        "id": sid,
                        "object": "billing_portal.session",
                        "url": f"https://portal.test/{sid}",
                    }
                    return self._reply(200, json.dumps(answer).encode())
                conn = http.client.HTTPConnection(
                    recorder.upstream.hostname, recorder.upstream.port, timeout=30
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
                }
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                self._reply(resp.status, resp.read())
                conn.close()

            def _reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self, path: str) -> list[dict]:
        return [r["form"] for r in self.requests if r["method"] == "POST" and r["path"] == path]


@pytest.fixture(scope="module")
def recorder(localstripe):
    rec = Recorder(localstripe)
    yield rec
    rec.server.shutdown()


@pytest.fixture
def billing(app, monkeypatch, recorder):
    """Billing on: the app talks to localstripe through the recorder."""
    for key, value in {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_PRICE_MONTHLY": MONTHLY,
        "STRIPE_PRICE_YEARLY": YEARLY,
        "STRIPE_API_BASE": recorder.url,
    }.items():
        monkeypatch.setitem(app.config, key, value)
    recorder.requests.clear()
    return recorder


@pytest.fixture
def ls(localstripe) -> stripe.StripeClient:
    """A client straight to localstripe: what Stripe itself does (Checkout paying, reading back)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe}, max_network_retries=0)


# Helpers -----------------------------------------------------------------------------------


def signed(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


def event(kind: str, obj: dict, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "data": {"object": obj},
    }


def send(client, evt: dict):  # noqa: ANN001, ANN201
    payload = json.dumps(evt)
    return client.post(
        "/billing/stripe/webhook",
        data=payload,
        headers={"Stripe-Signature": signed(payload)},
        content_type="application/json",
    )


def account(app, tenant_id: int) -> dict:
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(
            text("select * from public.billing_accounts where tenant_id = :t"), {"t": tenant_id}
        )
        return dict(row.mappings().one())


def set_account(app, tenant_id: int, sql: str, **params: object) -> None:
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            text(f"update public.billing_accounts set {sql} where tenant_id = :t"), {"t": tenant_id, **params}
        )


def signed_in(app, email: str) -> CsrfClient:
    app.test_client_class = CsrfClient
    client = app.test_client()
    client.sign_in(email)
    return client


def queued(app) -> int:
    from workers.queues import QUEUES, queue

    with app.app_context():
        return sum(queue(name).count for name in QUEUES)


def daily(app) -> None:
    from workers.billing import daily_billing
    from workers.queues import enqueue

    with app.app_context():
        enqueue(daily_billing, queue_name="low")
    run_jobs(app)


def checkout(owner: CsrfClient, tenant: TenantInfo, plan: str = "monthly"):  # noqa: ANN201
    return owner.form(f"/{tenant.slug}/billing/checkout", {"plan": plan})


def pay_with_checkout(app, ls, tenant: TenantInfo, quantity: int, plan: str = MONTHLY) -> dict:
    """What Stripe Checkout does once the admin pays: a card on the customer, the subscription."""
    customer = account(app, tenant.id)["stripe_customer_id"]
    pm = ls.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    ls.v1.payment_methods.attach(pm.id, params={"customer": customer})
    ls.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": pm.id}})
    sub = ls.v1.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"plan": plan, "quantity": quantity}],
            "metadata": {"tenant_id": str(tenant.id)},
        }
    )
    return sub.to_dict()


def completed_session(tenant: TenantInfo, customer: str, subscription: str) -> dict:
    return {
        "id": f"cs_test_{uuid.uuid4().hex[:12]}",
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "client_reference_id": str(tenant.id),
        "metadata": {"tenant_id": str(tenant.id)},
        "customer": customer,
        "subscription": subscription,
    }


def subscribe(app, ls, client, owner: CsrfClient, tenant: TenantInfo) -> dict:
    """Checkout started by the owner, paid at Stripe, completed by the webhook: an active subscription."""
    assert checkout(owner, tenant).status_code == 303
    seats = sql_value(
        app, "select count(*) from public.memberships where tenant_id = :t and is_active", t=tenant.id
    )
    sub = pay_with_checkout(app, ls, tenant, seats)
    customer = account(app, tenant.id)["stripe_customer_id"]
    assert (
        send(
            client, event("checkout.session.completed", completed_session(tenant, customer, sub["id"]))
        ).status_code
        == 200
    )
    run_jobs(app)
    assert account(app, tenant.id)["state"] == "active"
    return sub


def invoice(customer: str, subscription: str, status: str) -> dict:
    return {
        "id": f"in_{uuid.uuid4().hex[:14]}",
        "object": "invoice",
        "customer": customer,
        "subscription": subscription,
        "status": status,
    }


def stripe_quantity(ls, subscription_id: str) -> int:
    return ls.v1.subscriptions.retrieve(subscription_id).to_dict()["items"]["data"][0]["quantity"]


# Trial and billing off ------------------------------------------------------------------------


def test_signup_starts_a_14_day_trial_without_calling_stripe(app, client, billing):
    slug = unique("trial")
    resp = client.form(
        "/signup",
        {
            "company": "Trial Co",
            "slug": slug,
            "name": "Tia",
            "email": f"{slug}@example.com",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 302
    tenant_id = sql_value(app, "select id from public.tenants where slug = :s", s=slug)
    row = account(app, tenant_id)
    assert row["state"] == "trialing" and row["stripe_customer_id"] is None and row["seats_paid"] == 0
    assert abs(row["trial_ends_at"] - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=1)
    assert billing.requests == []  # no call to Stripe at sign-up
    page = client.get(f"/{slug}/billing").get_data(as_text=True)
    assert 'data-state="trialing"' in page and "14 days left" in page
    assert "Start subscription (monthly)" in page and "Start subscription (yearly)" in page


def test_billing_off_page_unlimited_seats_and_no_read_only(app, factory):
    t = factory.tenant(roles=("owner", "sales"))
    owner = signed_in(app, t.owner_email)
    page = owner.get(f"/{t.slug}/billing")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Billing is off: seats are unlimited." in html and "Start subscription" not in html
    # The admin menu has the entry.
    assert f'href="/{t.slug}/billing"' in owner.get(f"/{t.slug}/").get_data(as_text=True)
    # Whatever the record says, nothing is refused while billing is off.
    set_account(app, t.id, "state = 'read_only', seats_paid = 1, stripe_subscription_id = 'sub_off'")
    for _ in range(3):
        email = f"{unique('inv')}@example.com"
        assert (
            owner.form(f"/{t.slug}/admin/people/invite", {"email": email, "role": "sales"}).status_code == 302
        )
    assert owner.form(f"/{t.slug}/customers/companies/new", {"name": "Off Co"}).status_code == 302
    assert 'data-testid="billing-banner"' not in owner.get(f"/{t.slug}/").get_data(as_text=True)
    # The buttons do nothing but say so; the webhook is not there.
    resp = owner.form(f"/{t.slug}/billing/checkout", {"plan": "monthly"})
    assert resp.status_code == 302
    assert "Billing is off" in owner.get(resp.headers["Location"]).get_data(as_text=True)
    assert owner.post("/billing/stripe/webhook", data="{}").status_code == 404


# Checkout and the portal ------------------------------------------------------------------------


def test_checkout_sends_exactly_this_request_and_makes_the_customer_once(app, factory, billing):
    t = factory.tenant(roles=("owner", "admin", "sales"))
    add_member(app, t, "support", active=False)  # an inactive member is not a seat
    owner = signed_in(app, t.owner_email)

    resp = checkout(owner, t, "yearly")
    assert resp.status_code == 303
    [customer_call] = billing.posts("/v1/customers")
    assert customer_call == {"name": "Acme", "email": t.owner_email, "metadata[tenant_id]": str(t.id)}
    customer = account(app, t.id)["stripe_customer_id"]
    assert customer.startswith("cus_")
    [session] = billing.posts("/v1/checkout/sessions")
    base = f"http://crm.localhost/{t.slug}/billing"
    assert session == {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": str(t.id),
        "metadata[tenant_id]": str(t.id),
        "subscription_data[metadata][tenant_id]": str(t.id),
        "line_items[0][price]": YEARLY,
        "line_items[0][quantity]": "3",
        "success_url": f"{base}?checkout=success",
        "cancel_url": f"{base}?checkout=cancelled",
    }
    assert resp.headers["Location"].startswith("https://checkout.test/pay/cs_test_")
    assert all(r["authorization"] == f"Bearer {SECRET_KEY}" for r in billing.requests)
    # The customer lives in localstripe for real.
    assert billing.requests[0]["path"] == "/v1/customers"

    # Again, monthly: the same customer, no second one.
    assert checkout(owner, t, "monthly").status_code == 303
    assert len(billing.posts("/v1/customers")) == 1
    assert billing.posts("/v1/checkout/sessions")[-1]["line_items[0][price]"] == MONTHLY

    # The portal, for cards and invoices.
    resp = owner.form(f"/{t.slug}/billing/portal")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("https://portal.test/bps_")
    assert billing.posts("/v1/billing_portal/sessions") == [{"customer": customer, "return_url": base}]

    # Bad input and the wrong role: refused, nothing sent.
    sent = len(billing.requests)
    resp = owner.form(f"/{t.slug}/billing/checkout", {"plan": "weekly"})
    assert resp.status_code == 302 and "Choose monthly or yearly." in owner.get(
        resp.headers["Location"]
    ).get_data(as_text=True)
    sales = signed_in(app, t.email("sales"))
    assert sales.get(f"/{t.slug}/billing").status_code == 403
    assert sales.form(f"/{t.slug}/billing/checkout", {"plan": "monthly"}).status_code == 403
    assert sales.form(f"/{t.slug}/billing/portal").status_code == 403
    assert len(billing.requests) == sent


def test_portal_needs_a_customer_first(app, factory, billing):
    t = factory.tenant()
    owner = signed_in(app, t.owner_email)
    resp = owner.form(f"/{t.slug}/billing/portal")
    assert resp.status_code == 302
    assert "Start a subscription first." in owner.get(resp.headers["Location"]).get_data(as_text=True)
    assert billing.requests == []


# Webhooks ----------------------------------------------------------------------------------------


def test_webhook_with_a_bad_signature_is_400_and_changes_nothing(app, client, factory, billing):
    t = factory.tenant()
    evt = event("invoice.payment_failed", invoice("cus_x", "sub_x", "open"))
    payload = json.dumps(evt)
    before, jobs = db_state(app, "public"), queued(app)
    cases = [
        {},  # no signature
        {"Stripe-Signature": signed(payload, secret="whsec_wrong")},
        {"Stripe-Signature": signed(payload, at=int(time.time()) - 3600)},  # too old: a replayed capture
        {"Stripe-Signature": "t=1,v1=deadbeef"},
    ]
    for headers in cases:
        resp = client.post(
            "/billing/stripe/webhook", data=payload, headers=headers, content_type="application/json"
        )
        assert resp.status_code == 400, headers
    # The body changed after signing (the signature is over the raw bytes).
    tampered = payload.replace("invoice.payment_failed", "invoice.paid")
    resp = client.post(
        "/billing/stripe/webhook",
        data=tampered,
        headers={"Stripe-Signature": signed(payload)},
        content_type="application/json",
    )
    assert resp.status_code == 400
    # Signed, but not JSON.
    resp = client.post(
        "/billing/stripe/webhook", data="not json", headers={"Stripe-Signature": signed("not json")}
    )
    assert resp.status_code == 400
    assert db_state(app, "public") == before
    assert queued(app) == jobs
    assert account(app, t.id)["state"] == "trialing"


def test_lifecycle_active_seats_past_due_read_only_paid_and_cancelled(
    app, client, factory, billing, ls, smtp
):
    t = factory.tenant(roles=("owner", "sales"))
    owner = signed_in(app, t.owner_email)
    sub = subscribe(app, ls, client, owner, t)
    row = account(app, t.id)
    assert row["stripe_subscription_id"] == sub["id"] and row["seats_paid"] == 2 and row["plan"] == "monthly"
    assert row["current_period_end"] > datetime.now(UTC) + timedelta(days=27)
    page = owner.get(f"/{t.slug}/billing").get_data(as_text=True)
    assert (
        'data-state="active"' in page and "2 of 2 paid seats" in page and "Manage cards and invoices" in page
    )

    # Every paid seat is taken: inviting asks for seats first, with a link to add them.
    invitee = f"{unique('inv')}@example.com"
    resp = owner.form(f"/{t.slug}/admin/people/invite", {"email": invitee, "role": "sales"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "All 2 paid seats are taken by members and open invitations." in html
    assert f'<a href="/{t.slug}/billing" class="alert-link">Add seats</a>' in html
    assert sql_value(app, "select count(*) from public.invitations where tenant_id = :t", t=t.id) == 0

    # The admin adds a seat: Stripe's subscription has 3 (read back from localstripe).
    resp = owner.form(f"/{t.slug}/billing/seats", {"seats": "3"})
    assert resp.status_code == 302
    assert stripe_quantity(ls, sub["id"]) == 3 and account(app, t.id)["seats_paid"] == 3
    # Fewer seats than members and invitations: refused, nothing changed.
    resp = owner.form(f"/{t.slug}/billing/seats", {"seats": "1"})
    assert "choose at least that many" in owner.get(resp.headers["Location"]).get_data(as_text=True)
    assert stripe_quantity(ls, sub["id"]) == 3

    # Now the invitation goes out, and is accepted: a seat change, synced by a job.
    assert (
        owner.form(f"/{t.slug}/admin/people/invite", {"email": invitee, "role": "sales"}).status_code == 302
    )
    run_jobs(app)
    [mail] = smtp.to(invitee)
    link = re.search(r"http://crm\.localhost(/invite/\S+)", mail.get_body().get_content()).group(1)
    joiner = app.test_client()
    assert joiner.form(link, {"name": "Ivy", "password": PASSWORD}).status_code == 302
    assert queued(app) == 1  # the sync job
    run_jobs(app)
    assert stripe_quantity(ls, sub["id"]) == 3

    # A member removed: the quantity follows, down to 2.
    sales_m = t.membership("sales")
    assert owner.form(f"/{t.slug}/admin/people/{sales_m}/deactivate").status_code == 302
    run_jobs(app)
    assert stripe_quantity(ls, sub["id"]) == 2 and account(app, t.id)["seats_paid"] == 2
    # Bringing them back needs a seat too.
    resp = owner.form(f"/{t.slug}/admin/people/{sales_m}/reactivate")
    assert resp.status_code == 422 and "All 2 paid seats are taken" in resp.get_data(as_text=True)
    # A role change is not a seat change: no job.
    owner.form(f"/{t.slug}/admin/people/{sales_m}/role", {"role": "support"})
    assert queued(app) == 0

    # A payment fails: past due, a banner with the days left.
    customer = account(app, t.id)["stripe_customer_id"]
    assert (
        send(client, event("invoice.payment_failed", invoice(customer, sub["id"], "open"))).status_code == 200
    )
    run_jobs(app)
    row = account(app, t.id)
    assert row["state"] == "past_due" and row["past_due_since"] is not None
    page = owner.get(f"/{t.slug}/").get_data(as_text=True)
    assert 'data-testid="billing-banner" data-state="past_due"' in page
    assert "Update your card within 7 days" in page
    # Still writable during the grace.
    assert owner.form(f"/{t.slug}/customers/companies/new", {"name": "Grace Co"}).status_code == 302

    # Eight days later the daily job makes it read-only.
    set_account(app, t.id, "past_due_since = now() - interval '8 days'")
    daily(app)
    assert account(app, t.id)["state"] == "read_only"
    page = owner.get(f"/{t.slug}/").get_data(as_text=True)
    assert 'data-state="read_only"' in page

    # Read-only: writes refused (pages and API), reads and exports work, paying works.
    companies = f"select count(*) from {t.schema}.companies"
    count = sql_value(app, companies)
    resp = owner.form(f"/{t.slug}/customers/companies/new", {"name": "Blocked Co"})
    assert resp.status_code == 402 and "read-only until its bill is paid" in resp.get_data(as_text=True)
    token = _api_token(app, t)
    api = app.test_client()
    resp = api.post(
        f"/api/v1/{t.slug}/companies", json={"name": "Api Co"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 402
    assert resp.get_json()["error"]["code"] == "workspace_read_only"
    assert sql_value(app, companies) == count
    assert (
        api.get(f"/api/v1/{t.slug}/companies", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    assert owner.get(f"/{t.slug}/customers/companies").status_code == 200
    export = owner.get(f"/{t.slug}/customers/companies/export?format=csv")
    assert export.status_code == 200 and "Grace Co" in export.get_data(as_text=True)
    page = owner.get(f"/{t.slug}/billing").get_data(as_text=True)
    # The open invoice is paid through the portal, never by a second subscription.
    assert "Manage cards and invoices" in page and "Start subscription" not in page
    assert checkout(owner, t).status_code == 302
    assert len(billing.posts("/v1/checkout/sessions")) == 1  # only the first, from subscribe()
    assert owner.form(f"/{t.slug}/billing/portal").status_code == 303
    assert owner.form("/logout").status_code == 302
    owner = signed_in(app, t.owner_email)

    # The invoice is paid at last: active again, writes work.
    assert send(client, event("invoice.paid", invoice(customer, sub["id"], "paid"))).status_code == 200
    run_jobs(app)
    row = account(app, t.id)
    assert row["state"] == "active" and row["past_due_since"] is None
    assert 'data-testid="billing-banner"' not in owner.get(f"/{t.slug}/").get_data(as_text=True)
    assert owner.form(f"/{t.slug}/customers/companies/new", {"name": "Paid Co"}).status_code == 302

    # The subscription ends: cancelled, and read-only again; a new subscription can be started.
    ended = {**ls.v1.subscriptions.cancel(sub["id"]).to_dict()}
    assert send(client, event("customer.subscription.deleted", ended)).status_code == 200
    run_jobs(app)
    assert account(app, t.id)["state"] == "cancelled"
    assert owner.form(f"/{t.slug}/customers/companies/new", {"name": "Late Co"}).status_code == 402
    page = owner.get(f"/{t.slug}/billing").get_data(as_text=True)
    assert 'data-state="cancelled"' in page and "Start subscription (monthly)" in page

    # Every change is in the workspace's audit log.
    states = sql_value(
        app,
        f"select string_agg(changes->'state'->>1, ',' order by id) from {t.schema}.audit_log"
        " where action = 'billing' and changes ? 'state'",
    )
    assert states == "active,past_due,read_only,active,cancelled"


def _api_token(app, t: TenantInfo) -> str:
    from saas import tenancy
    from saas.extensions import db
    from tenants.api import tokens

    with app.test_request_context(), tenancy.bound(t.id, t.schema, t.slug):
        _row, raw = tokens.create(t.people["owner"][0], "billing test", 30)
        db.session.remove()
    return raw


def test_replayed_event_is_processed_once(app, client, factory, billing, ls):
    t = factory.tenant()
    owner = signed_in(app, t.owner_email)
    sub = subscribe(app, ls, client, owner, t)
    customer = account(app, t.id)["stripe_customer_id"]
    now = int(time.time())
    failed = event("invoice.payment_failed", invoice(customer, sub["id"], "open"), created=now)
    paid = event("invoice.paid", invoice(customer, sub["id"], "paid"), created=now)

    assert send(client, failed).get_json() == {"received": True}
    assert send(client, failed).status_code == 200  # again before the job ran: still processed once
    run_jobs(app)
    assert account(app, t.id)["state"] == "past_due"
    send(client, paid)
    run_jobs(app)
    assert account(app, t.id)["state"] == "active"

    # The replay of a processed event is acknowledged and not queued, so it cannot undo the payment.
    processed_at = sql_value(
        app, "select processed_at from public.stripe_events where id = :i", i=failed["id"]
    )
    resp = send(client, failed)
    assert resp.status_code == 200 and resp.get_json() == {"received": True, "duplicate": True}
    assert queued(app) == 0
    run_jobs(app)
    assert account(app, t.id)["state"] == "active"
    assert sql_value(app, "select count(*) from public.stripe_events where id = :i", i=failed["id"]) == 1
    assert (
        sql_value(app, "select processed_at from public.stripe_events where id = :i", i=failed["id"])
        == processed_at
    )
    assert (
        sql_value(
            app,
            f"select count(*) from {t.schema}.audit_log where action = 'billing' and summary like :s",
            s=f"Stripe {failed['id']}:%",
        )
        == 1
    )


def test_an_event_for_tenant_a_never_changes_tenant_b(app, client, factory, billing, ls):
    a, b = factory.tenant(name="Alpha"), factory.tenant(name="Bravo")
    sub_a = subscribe(app, ls, client, signed_in(app, a.owner_email), a)
    sub_b = subscribe(app, ls, client, signed_in(app, b.owner_email), b)
    cus_a, cus_b = account(app, a.id)["stripe_customer_id"], account(app, b.id)["stripe_customer_id"]
    b_before = account(app, b.id)

    # A's payment fails: A is past due, B is not touched.
    send(client, event("invoice.payment_failed", invoice(cus_a, sub_a["id"], "open")))
    # A session naming B's tenant id, but A's customer and subscription.
    forged = completed_session(b, cus_a, sub_a["id"])
    send(client, event("checkout.session.completed", forged))
    # A's customer with B's subscription id; B's subscription deleted under A's customer.
    send(client, event("invoice.paid", invoice(cus_a, sub_b["id"], "paid")))
    send(
        client,
        event(
            "customer.subscription.deleted",
            {"id": sub_b["id"], "object": "subscription", "customer": cus_a, "status": "canceled"},
        ),
    )
    run_jobs(app)
    assert account(app, a.id)["state"] == "past_due"
    assert account(app, b.id) == b_before
    assert (
        sql_value(
            app,
            f"select count(*) from {b.schema}.audit_log where action = 'billing' and summary like 'Stripe evt%'",
        )
        == 1
    )  # B's own checkout
    assert cus_b != cus_a


def test_trial_over_without_subscription_is_read_only(app, client, factory, billing):
    t = factory.tenant()
    owner = signed_in(app, t.owner_email)
    set_account(app, t.id, "trial_ends_at = now() - interval '1 hour'")
    # At once, before the daily job: writes refused, the billing page and checkout open.
    resp = owner.form(f"/{t.slug}/customers/companies/new", {"name": "Trial Co"})
    assert resp.status_code == 402 and "free trial of this workspace has ended" in resp.get_data(as_text=True)
    assert 'data-state="read_only"' in owner.get(f"/{t.slug}/billing").get_data(as_text=True)
    assert checkout(owner, t).status_code == 303
    daily(app)
    assert account(app, t.id)["state"] == "read_only"
    # An htmx write gets the short refusal.
    htmx = owner.post(
        f"/{t.slug}/customers/companies/new",
        data={"name": "X"},
        headers={"HX-Request": "true", "X-CSRFToken": owner.csrf_token()},
    )
    assert htmx.status_code == 402 and 'data-status="402"' in htmx.get_data(as_text=True)


def test_seat_ledger_rows_per_tenant_per_day(app, factory):
    """Billing on or off, the daily job writes each tenant's seats for the day (the metering record)."""
    from sqlalchemy import text

    from saas.extensions import db
    from workers.billing import daily_billing

    t = factory.tenant(roles=("owner", "sales", "support"))
    add_member(app, t, "marketing", active=False)
    today = datetime.now(UTC).date()
    old, yesterday = (today - timedelta(days=100)).isoformat(), (today - timedelta(days=1)).isoformat()
    with app.app_context():
        daily_billing(old)
        daily_billing(yesterday)
        daily_billing(yesterday)  # idempotent: still one row
        db.session.remove()
    assert sql_value(app, "select count(*) from public.seat_ledger where tenant_id = :t", t=t.id) == 2
    # A member leaves: that day keeps the most seats it had, the next day has fewer.
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            text("update public.memberships set is_active = false where id = :m"),
            {"m": t.membership("support")},
        )
    with app.app_context():
        daily_billing(yesterday)
        daily_billing()  # today
        db.session.remove()
    seats = sql_value(
        app,
        "select string_agg(seats::text, ',' order by day) from public.seat_ledger where tenant_id = :t",
        t=t.id,
    )
    assert seats == "3,3,2"
    # The admin sees the last 90 days.
    page = signed_in(app, t.owner_email).get(f"/{t.slug}/billing").get_data(as_text=True)
    table = page.split('data-testid="seat-ledger"')[1].split("</table>")[0]
    cells = [c.strip() for c in table.split('<td class="text-end">')[1:]]
    assert [c.split("<")[0] for c in cells] == ["2", "—", "3", "—"]


def test_summaries_for_the_platform_console(app, client, factory, billing, ls):
    from saas.billing.services import summaries

    trial = factory.tenant(roles=("owner", "sales"))
    paid = factory.tenant()
    subscribe(app, ls, client, signed_in(app, paid.owner_email), paid)
    with app.app_context():
        got = summaries([trial.id, paid.id])
    assert set(got) == {trial.id, paid.id}
    assert got[trial.id]["state"] == "trialing" and got[trial.id]["plan"] is None
    assert got[trial.id]["seats_used"] == 2 and got[trial.id]["seats_paid"] == 0
    assert got[trial.id]["trial_ends_at"] > datetime.now(UTC) + timedelta(days=13)
    assert {k: got[paid.id][k] for k in ("plan", "state", "seats_used", "seats_paid")} == {
        "plan": "monthly",
        "state": "active",
        "seats_used": 1,
        "seats_paid": 1,
    }


def test_localstripe_delivers_a_signed_webhook_to_the_running_app(
    app, client, factory, billing, ls, localstripe
):
    """The signature made by another implementation (localstripe's) checks out too, end to end."""
    from werkzeug.serving import make_server

    t = factory.tenant()
    sub = subscribe(app, ls, client, signed_in(app, t.owner_email), t)

    def as_crm_localhost(environ, start_response):  # noqa: ANN001, ANN202 - the app answers crm.localhost only
        environ["HTTP_HOST"] = "crm.localhost"
        return app(environ, start_response)

    server = make_server("127.0.0.1", free_port(), as_crm_localhost, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{server.server_port}/billing/stripe/webhook"
        conn = http.client.HTTPConnection(urlsplit(localstripe).hostname, urlsplit(localstripe).port)
        body = f"url={hook}&secret={WEBHOOK_SECRET}&events[]=customer.subscription.deleted"
        conn.request(
            "POST",
            f"/_config/webhooks/{uuid.uuid4().hex[:8]}",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert conn.getresponse().status == 200
        ls.v1.subscriptions.cancel(sub["id"])  # localstripe sends customer.subscription.deleted, signed
        deadline = time.monotonic() + 15
        query = "select count(*) from public.stripe_events where type = 'customer.subscription.deleted' and payload->'data'->'object'->>'id' = :s"
        while sql_value(app, query, s=sub["id"]) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sql_value(app, query, s=sub["id"]) == 1
    finally:
        server.shutdown()
    run_jobs(app)
    assert account(app, t.id)["state"] == "cancelled"


def test_billing_tables_match_the_migration(app):
    """The models of saas.billing and 4b1e5a7c0001 describe the same tables (autogenerate finds nothing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from saas.extensions import db

    mine = {"billing_accounts", "stripe_events", "seat_ledger"}

    def include(obj, name, kind, reflected, compare_to):  # noqa: ANN001, ANN202
        table = obj if kind == "table" else getattr(obj, "table", None)
        return table is None or (table.name in mine and table.schema == "public")

    def include_name(name, kind, parents):  # noqa: ANN001, ANN202 - reflect only these (not every tenant)
        if kind == "schema":
            return name in (None, "public")  # None: the default schema, public
        return kind != "table" or name in mine

    with app.app_context(), db.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "include_object": include,
                "compare_type": True,
            },
        )
        diff = compare_metadata(ctx, db.metadata)
        # Alembic reports every foreign key to "public.<table>" as missing (PostgreSQL reflects the
        # referred schema as the default one), old tables too: those are compared here instead.
        reflected = {
            (
                t,
                fk["name"],
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                fk["options"].get("ondelete"),
            )
            for t in mine
            for fk in inspect(conn).get_foreign_keys(t, schema="public")
        }
    modelled = {
        (t, fk.name, tuple(c.name for c in fk.columns), fk.referred_table.name, fk.ondelete)
        for t in mine
        for fk in db.metadata.tables[f"public.{t}"].foreign_key_constraints
    }
    assert reflected == modelled and len(modelled) == 2
    assert [d for d in diff if d[0] != "add_fk"] == []


@pytest.mark.parametrize("take", ["invite", "reactivate"])
def test_two_admins_at_once_take_the_last_paid_seat_once(app, factory, monkeypatch, take):
    """Billing on, 3 paid seats, 2 taken: two admins take the last seat in two real transactions at the
    same moment. Each transaction, once it has counted the seats, waits until the other has counted
    too or is waiting for a lock: without the tenant's seat lock both count one free seat and both get
    it (4 seats for 3 paid); with it the second counts after the first commits and is refused."""
    import time

    from sqlalchemy import text

    from saas import tenancy
    from saas.billing import services as billing_services
    from saas.billing.services import SeatLimitError
    from saas.extensions import db
    from saas.models import User
    from tenants.admin import services as admin

    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", SECRET_KEY)  # no Stripe call on this path
    t = factory.tenant(roles=("owner", "admin"))
    set_account(app, t.id, "state = 'active', seats_paid = 3, stripe_subscription_id = :s", s=f"sub_{t.slug}")
    if take == "reactivate":
        away = [add_member(app, t, "sales", active=False)[2] for _ in range(2)]
    else:
        away = [f"{unique('race')}@example.com" for _ in range(2)]

    pids: dict[str, int] = {}
    counted: dict[str, int] = {}
    results: dict[str, str] = {}
    start = threading.Barrier(2, timeout=10)
    real_seats_taken = billing_services.seats_taken

    def waiting_for_a_lock(pid: int) -> bool:
        with db.engine.connect() as conn:
            kind = conn.execute(
                text("select wait_event_type from pg_stat_activity where pid = :p"), {"p": pid}
            ).scalar()
        return kind == "Lock"

    def seats_taken(tenant_id: int) -> int:
        n = real_seats_taken(tenant_id)
        me = threading.current_thread().name
        other = "b" if me == "a" else "a"
        counted[me] = n
        deadline = time.monotonic() + 10
        while other not in counted and not waiting_for_a_lock(pids[other]):
            assert time.monotonic() < deadline, "the other transaction neither counted nor waited"
            time.sleep(0.02)
        return n

    monkeypatch.setattr(billing_services, "seats_taken", seats_taken)

    def work(role: str, target) -> None:  # noqa: ANN001 - an email or a membership id
        me = threading.current_thread().name
        with app.test_request_context(), tenancy.bound(t.id, t.schema, t.slug):
            try:
                pids[me] = db.session.scalar(text("select pg_backend_pid()"))  # this transaction's
                start.wait()
                if take == "invite":
                    admin.invite(role, db.session.get(User, t.people[role][0]), target, "sales")
                else:
                    admin.set_active(role, target, True)
                results[me] = "taken"
            except SeatLimitError:
                results[me] = "refused"
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results[me] = repr(exc)
            finally:
                db.session.rollback()
                db.session.remove()

    threads = [
        threading.Thread(target=work, args=("owner", away[0]), name="a"),
        threading.Thread(target=work, args=("admin", away[1]), name="b"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == ["refused", "taken"], results
    assert sorted(counted.values()) == [2, 3]  # the second count saw the first one's seat
    taken = sql_value(
        app,
        "select (select count(*) from public.memberships where tenant_id = :t and is_active)"
        " + (select count(*) from public.invitations where tenant_id = :t and accepted_at is null)",
        t=t.id,
    )
    assert taken == 3
