"""Read-only workspaces: the one check, called by the workspace's and the API's before_request.

A workspace whose trial or grace period is over, or whose subscription ended, keeps its data and
can read and export it, pay (the billing pages) and sign out, but every other write is refused.
"""

from __future__ import annotations

from flask import Response, g, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from saas.billing import services

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _message(status: services.Status) -> str:
    if status.state == "cancelled":
        return _(
            "The subscription of this workspace has ended, so it is read-only: your data is kept and "
            "can be exported. Start a new subscription on the billing page to make changes again."
        )
    if not status.has_subscription:
        return _(
            "The free trial of this workspace has ended, so it is read-only: your data is kept and can be "
            "exported. Start a subscription on the billing page to make changes again."
        )
    return _(
        "This workspace is read-only until its bill is paid: your data is kept and can be exported. "
        "Pay on the billing page to make changes again."
    )


def refuse_when_read_only() -> ResponseReturnValue | None:
    """For tenant pages (g.tenant bound): sets g.billing for the banner; refuses writes when read-only."""
    g.billing = services.status(g.tenant.id) if services.enabled() else None
    if g.billing is None or g.billing.writable or request.method in SAFE_METHODS:
        return None
    if (request.endpoint or "").startswith("workspace.billing."):
        return None  # paying is how a workspace gets out of read-only
    from saas.pages import render

    message = _message(g.billing)
    return render(
        "billing/read_only.html", "_partials/error_message.html", 402, status_code=402, message=message
    )


def api_refusal() -> Response | None:
    """For the API (g.tenant bound): a JSON 402 for a write while the workspace is read-only."""
    if request.method in SAFE_METHODS:
        return None
    refused = services.writes_refused(g.tenant.id)
    if refused is None:
        return None
    from tenants.api.errors import json_response

    error = {"status": 402, "code": "workspace_read_only", "message": _message(refused), "fields": {}}
    return json_response({"error": error}, 402)
