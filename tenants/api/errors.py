"""JSON answers of the API, errors included: {"error": {"status", "code", "message", "fields"}}.

JSON is written with <, > and & escaped (\\u003c ...): a value holding markup stays inert
even if something were to show the body as HTML.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "server_error",
}
MESSAGES: dict[int, Any] = {
    400: _l("The request is not well formed."),
    401: _l("Send a valid API token of this workspace as Authorization: Bearer <token>."),
    403: _l("Your role does not allow this. Ask an admin of this workspace for access."),
    404: _l("There is nothing here. The address may be wrong, or the record was removed."),
    405: _l("This method is not allowed here."),
    409: _l("The request conflicts with the record as it is now."),
    415: _l("Send the body as JSON (Content-Type: application/json)."),
    422: _l("Some values are not valid."),
    429: _l("Too many requests. Wait a little and try again."),
    500: _l("Something went wrong on our side."),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: Any = None,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(message or MESSAGES.get(status, "")))
        self.status = status
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def dumps(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_plain)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(dumps(payload), status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def error_response(
    status: int,
    message: Any = None,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "error": {
            "status": status,
            "code": CODES.get(status, "error"),
            "message": str(message or MESSAGES.get(status, "")),
            "fields": {k: str(v) for k, v in (fields or {}).items()},
        }
    }
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="api"')
    return json_response(body, status, headers)


def install(bp: Blueprint) -> None:
    @bp.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err.status, err.message, err.fields, err.headers)

    @bp.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        return http_error_response(err)


def http_error_response(err: HTTPException) -> Response:
    """An HTTP error (abort, routing) as the API's JSON error."""
    status = err.code or 500
    allowed = getattr(err, "valid_methods", None)
    return error_response(status, headers={"Allow": ", ".join(allowed)} if allowed else None)
