"""Sentry: started only when SENTRY_DSN is set; tags tenant and request id; scrubs personal data."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, g

PERSONAL_KEYS = {
    "email",
    "password",
    "name",
    "phone",
    "address",
    "token",
    "csrf_token",
    "cookie",
    "authorization",
    "query_string",
    "remote_addr",
    "forwarded",
}
# Addresses anywhere in an event: in reprs of requests, query strings, nested locals, messages.
EMAIL_RE = re.compile(r"[\w.%+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+")


def _scrub_vars(value: Any) -> Any:
    """Locals, however deeply nested: any key that names personal data loses its value."""
    if isinstance(value, dict):
        return {
            k: "[scrubbed]" if any(p in str(k).lower() for p in PERSONAL_KEYS) else _scrub_vars(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub_vars(v) for v in value]
    return value


def _scrub_emails(value: Any) -> Any:
    if isinstance(value, str):
        return EMAIL_RE.sub("[email]", value)
    if isinstance(value, dict):
        return {k: _scrub_emails(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_emails(v) for v in value]
    return value


def scrub(event: dict[str, Any], _hint: Any = None) -> dict[str, Any]:
    """Drop personal data from an event before it leaves the process."""
    event.pop("user", None)
    req = event.get("request") or {}
    req.pop("cookies", None)
    req.pop("data", None)
    headers = req.get("headers") or {}
    for key in list(headers):
        if key.lower() in {"cookie", "authorization", "x-csrftoken"}:
            headers[key] = "[scrubbed]"
    if "query_string" in req:
        req["query_string"] = "[scrubbed]"
    for exc in (event.get("exception") or {}).get("values", []):
        for frame in (exc.get("stacktrace") or {}).get("frames", []):
            if frame.get("vars"):
                frame["vars"] = _scrub_vars(frame["vars"])
    return _scrub_emails(event)


def init_sentry(app: Flask, dsn: str | None = None, **options: Any) -> bool:
    dsn = dsn or app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[FlaskIntegration(), RqIntegration()],
        send_default_pii=False,
        before_send=scrub,
        environment=app.config.get("ENV_NAME"),
        **options,
    )

    @app.before_request
    def _tag() -> None:
        sentry_sdk.set_tag("request_id", g.get("request_id"))

    return True


def tag_tenant(tenant_id: int | None) -> None:
    try:
        import sentry_sdk

        sentry_sdk.set_tag("tenant", tenant_id)
    except ImportError:  # pragma: no cover
        pass
