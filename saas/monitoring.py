"""Sentry: started only when SENTRY_DSN is set; tags tenant and request id; scrubs personal data."""

from __future__ import annotations

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
}


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
            for var in list(frame.get("vars") or {}):
                if any(k in var.lower() for k in PERSONAL_KEYS):
                    frame["vars"][var] = "[scrubbed]"
    return event


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
