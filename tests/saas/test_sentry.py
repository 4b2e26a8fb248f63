"""Sentry: installed only with a DSN; an error in a tenant route is reported tagged with the
tenant and request id, with personal data scrubbed. Events go to a transport kept in memory."""

from __future__ import annotations

import json

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from tests.factories import PASSWORD, CsrfClient

DSN = "https://publickey@sentry.invalid/1"


class LocalTransport(Transport):
    """Keeps every event the SDK would send, instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    def capture_envelope(self, envelope) -> None:  # noqa: ANN001
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


class Broken(RuntimeError):
    pass


@pytest.fixture
def sentry_app(app, tmp_path):
    """A fresh app (hooks can only be added before its first request) with Sentry on a local transport."""
    from saas import create_app, monitoring
    from saas.config import TestConfig
    from saas.extensions import db

    fresh = create_app(TestConfig, MAIL_DIR=str(tmp_path), SERVER_NAME="crm.localhost", SENTRY_DSN="")
    fresh.test_client_class = CsrfClient
    transport = LocalTransport()
    try:
        assert monitoring.init_sentry(fresh, dsn=DSN, transport=transport) is True
        assert sentry_sdk.get_client().is_active()
        yield fresh, transport
    finally:
        # Leave no Sentry behind for the rest of the session.
        sentry_sdk.get_client().close(timeout=0)
        sentry_sdk.get_global_scope().set_client(None)
        for scope in (
            sentry_sdk.get_global_scope(),
            sentry_sdk.get_isolation_scope(),
            sentry_sdk.get_current_scope(),
        ):
            scope.clear()
        assert not sentry_sdk.get_client().is_active()
        with fresh.app_context():
            db.engine.dispose()


def test_no_dsn_no_sentry(app, monkeypatch):
    from saas import monitoring

    monkeypatch.setitem(app.config, "SENTRY_DSN", "")
    assert monitoring.init_sentry(app) is False
    assert not sentry_sdk.get_client().is_active()


def test_error_in_tenant_route_is_tagged_and_scrubbed(sentry_app, factory, monkeypatch):
    from tenants.admin import services

    fresh, transport = sentry_app
    t = factory.tenant()
    client = fresh.test_client()
    client.sign_in(t.owner_email)
    session_cookie = client.get_cookie("session", domain="crm.localhost").value
    assert client.get(f"/{t.slug}/").status_code == 200
    assert transport.events == []  # nothing to report for a good request

    def broken_facets():  # noqa: ANN202
        from flask import request
        from flask_login import current_user

        # Personal data in the failing frame's locals, plain and nested.
        email = current_user.email
        password = PASSWORD
        reset_token = PASSWORD[::-1]
        asked = {"who": request.args["user"], "auth": {"token": reset_token}}
        raise Broken(f"facets failed after {len(email + password + str(asked))} chars")

    monkeypatch.setattr(services, "audit_facets", broken_facets)
    with pytest.raises(Broken):
        client.get(
            f"/{t.slug}/admin/audit",
            query_string={"user": t.owner_email},
            headers={"X-Request-ID": "req-sentry-1", "Authorization": "Bearer not-for-sentry"},
        )
    sentry_sdk.flush(timeout=2)

    reported = [
        e
        for e in transport.events
        if any(v["type"] == "Broken" for v in e.get("exception", {}).get("values", []))
    ]
    assert len(reported) == 1, transport.events
    event = reported[0]
    assert str(event["tags"]["tenant"]) == str(t.id)
    assert event["tags"]["request_id"] == "req-sentry-1"
    assert event["request"]["url"].endswith(f"/{t.slug}/admin/audit")

    # The failing frame is there, its personal locals are not.
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    frame = next(f for f in frames if f["function"] == "broken_facets")
    for name in ("email", "password", "reset_token"):
        assert frame["vars"][name] in ("[scrubbed]", "[Filtered]"), frame["vars"]
    assert frame["vars"]["asked"]["who"].strip("'") == "[email]"
    assert frame["vars"]["asked"]["auth"] in ("[scrubbed]", "[Filtered]", {"token": "[scrubbed]"})

    assert "user" not in event or not event["user"].get("email")
    dump = json.dumps(event, default=str)
    for secret in (
        t.owner_email,
        t.owner_email.replace("@", "%40"),
        PASSWORD,
        PASSWORD[::-1],
        session_cookie,
        "not-for-sentry",
    ):
        assert secret not in dump, f"{secret!r} reached Sentry"


def test_scrub_on_its_own():
    from saas.monitoring import scrub

    event = {
        "user": {"email": "a@example.com", "ip_address": "1.2.3.4"},
        "request": {
            "cookies": {"session": "abc"},
            "data": {"password": "x"},
            "headers": {
                "Cookie": "session=abc",
                "Authorization": "Bearer t",
                "X-CSRFToken": "c",
                "Accept": "*/*",
            },
            "query_string": "email=a%40example.com",
        },
        "exception": {
            "values": [
                {
                    "value": "duplicate key (email)=(b@example.com)",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "saas/x.py",
                                "vars": {
                                    "user_email": "a@example.com",
                                    "n": 3,
                                    "environ": {
                                        "HTTP_COOKIE": "session=abc",
                                        "QUERY_STRING": "q=1",
                                        "PATH_INFO": "/",
                                    },
                                    "req": "<Request 'http://h/x?user=c%40example.com'>",
                                },
                            }
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": "sent to d@example.co.th"}]},
    }
    out = scrub(event)
    assert "user" not in out and "cookies" not in out["request"] and "data" not in out["request"]
    assert out["request"]["headers"] == {
        "Cookie": "[scrubbed]",
        "Authorization": "[scrubbed]",
        "X-CSRFToken": "[scrubbed]",
        "Accept": "*/*",
    }
    assert out["request"]["query_string"] == "[scrubbed]"
    exc = out["exception"]["values"][0]
    assert exc["value"] == "duplicate key (email)=([email])"
    assert exc["stacktrace"]["frames"][0]["filename"] == "saas/x.py"
    assert exc["stacktrace"]["frames"][0]["vars"] == {
        "user_email": "[scrubbed]",
        "n": 3,
        "environ": {"HTTP_COOKIE": "[scrubbed]", "QUERY_STRING": "[scrubbed]", "PATH_INFO": "/"},
        "req": "<Request 'http://h/x?user=[email]'>",
    }
    assert out["breadcrumbs"]["values"][0]["message"] == "sent to [email]"
