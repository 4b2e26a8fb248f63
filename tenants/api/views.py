"""The REST API: blueprint "api" at /api/v1, routes made from tenants.api.resources.RESOURCES.

Every resource route is under /api/v1/<slug>/ and needs "Authorization: Bearer <token>":
the token is looked up in that workspace's schema only (a token of another workspace is
not there: 401), its user must still be an active member, and their role's permissions
and record visibility apply as on the pages. Cookies are never a way in (no CSRF then:
the blueprint is exempt). Each token has its own rate limit in Redis.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, g, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from saas import audit, ratelimit, tenancy
from saas.billing import access as billing_access
from saas.extensions import csrf, db
from saas.models import Membership, Tenant, User
from saas.monitoring import tag_tenant
from saas.permissions import can, role_for
from tenants.api import errors, openapi, tokens
from tenants.api.errors import ApiError, json_response
from tenants.api.resources import Prop, Resource, routes
from tenants.customers.errors import CustomerError, NotFound
from tenants.customers.people import Viewer

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens only: a browser's cookies never authenticate here
errors.install(bp)

DEFAULT_RATE_LIMIT = (600, 60)  # requests per token, per window of seconds (config: API_RATE_LIMIT)


@bp.url_value_preprocessor
def _pull_slug(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.api_slug = (values or {}).pop("slug", None)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@bp.before_request
def _authenticate() -> ResponseReturnValue | None:
    if request.endpoint == "api.openapi" or g.get("api_slug") is None:
        return None
    raw = _bearer()
    if raw is None:
        raise ApiError(
            401,
            _("Send your API token as Authorization: Bearer <token>; a signed-in session is not accepted."),
        )
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == g.api_slug, Tenant.status != "deleted"))
    if tenant is None:
        raise ApiError(401)  # the same answer as a wrong token: workspaces cannot be probed
    tenancy.bind(tenant.id, tenant.schema_name, tenant.slug)
    token = tokens.find(raw)
    if token is None:
        raise ApiError(401)
    member = db.session.scalar(
        select(Membership).where(
            Membership.tenant_id == tenant.id,
            Membership.user_id == token.user_id,
            Membership.is_active.is_(True),
        )
    )
    user = db.session.get(User, token.user_id) if member is not None else None
    if user is None:
        raise ApiError(401)
    if tenant.status == "suspended":  # by a platform operator (saas.console): tokens stop, data is kept
        raise ApiError(
            403, _("This workspace is suspended; its API tokens do not work until it is reactivated.")
        )
    _rate_limit(tenant.id, token.id)
    actor = audit.current_actor()
    audit.set_actor(audit.Actor(user.id, user.email, actor.ip, actor.request_id))
    tag_tenant(tenant.id)
    g.tenant, g.membership, g.role = tenant, member, role_for(member.role)
    g.api_user, g.api_token_id = user, token.id
    tokens.touch(token)
    refused = billing_access.api_refusal()  # billing: a read-only workspace takes no writes
    if refused is not None:
        return refused
    return None


def _rate_limit(tenant_id: int, token_id: int) -> None:
    limit, window = current_app.config.get("API_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    now = time.time()
    # Windows aligned to the clock: the key names the window, so Retry-After is exact.
    who = f"{tenant_id}:{token_id}:{int(now // window)}"
    if not ratelimit.hit("api", who, limit, window):
        retry = max(1, int(window - now % window))
        raise ApiError(429, headers={"Retry-After": str(retry)})


# Requests -----------------------------------------------------------------------------------

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
TYPE_WORDS: dict[str, Any] = {
    "string": _l("a string"),
    "integer": _l("a whole number"),
    "number": _l("a number"),
    "boolean": _l("true or false"),
    "array": _l("a list of strings"),
    "object": _l("an object"),
}


def _type_ok(prop: Prop, value: Any) -> bool:
    kinds = prop.schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if value is None:
        return "null" in kinds
    for kind in kinds:
        accepted = JSON_TYPES.get(kind, ())
        if isinstance(value, accepted) and not (isinstance(value, bool) and kind in ("integer", "number")):
            if kind == "array" and not all(isinstance(v, str) for v in value):
                continue
            return True
    return False


def _body(resource: Resource, operation: str) -> dict[str, Any]:
    """The JSON object of a create or update, with every key known, writable and of its type."""
    if not request.is_json:
        raise ApiError(415)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, _("The body must be a JSON object."))
    writable = resource.writable(operation)
    problems: dict[str, str] = {}
    for key, value in data.items():
        prop = writable.get(key)
        if prop is None:
            problems[str(key)[:100]] = _("Unknown field, or one that cannot be set here.")
        elif not _type_ok(prop, value):
            kinds = prop.schema.get("type")
            kind = next(k for k in ([kinds] if isinstance(kinds, str) else kinds) if k in TYPE_WORDS)
            problems[key] = _("Give %(kind)s.", kind=TYPE_WORDS[kind])  # or null, where the schema says so
    if problems:
        raise ApiError(422, fields=problems)
    if "owner_id" in data and data["owner_id"] is None:
        data["owner_id"] = ""  # the services read "" as nobody (None as "leave as it is")
    return data


def _field_name(field: str | None) -> str:
    if field and field.startswith("cf_"):
        return f"custom.{field[3:]}"
    return field or ""


def _call(fn: Any, *args: Any) -> Any:
    """Run a service: not found (or not visible) is 404, its refusals 422 (a field) or 409."""
    try:
        return fn(*args)
    except NotFound:
        db.session.rollback()
        raise ApiError(404) from None
    except CustomerError as err:
        db.session.rollback()
        if err.field:
            raise ApiError(422, str(err), {_field_name(err.field): str(err)}) from None
        raise ApiError(409, str(err)) from None
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409) from None


def _view(resource: Resource, operation: str) -> Any:
    module, action = resource.permissions[operation]

    def view(id: int | None = None) -> ResponseReturnValue:  # noqa: A002 - the URL's {id}
        if not can(module, action):
            raise ApiError(403)
        viewer = Viewer(g.api_user.id, getattr(g.role, "visibility", "own") or "own")
        if operation == "list":
            page = _call(resource.list, viewer, request.args)
            if page.query.problems:
                raise ApiError(400, " ".join(str(p) for p in page.query.problems))
            return json_response(
                {"data": [resource.to_json(r) for r in page.items], "next_cursor": page.next_cursor}
            )
        if operation == "get":
            return json_response(resource.to_json(_call(resource.get, viewer, id)))
        if operation == "create":
            record = _call(resource.create, viewer, _body(resource, "create"))
            location = url_for(f"api.{resource.name}_get", slug=g.tenant.slug, id=record.id)
            return json_response(resource.to_json(record), 201, {"Location": location})
        if operation == "update":
            record = _call(resource.update, viewer, id, _body(resource, "update"))
            return json_response(resource.to_json(record))
        _call(resource.delete, viewer, id)
        return "", 204

    view.__name__ = f"{resource.name}_{operation}"
    view.permission = (module, action)  # type: ignore[attr-defined]
    return view


for _resource, _op, _rule, _method in routes():
    bp.add_url_rule(
        _rule, endpoint=f"{_resource.name}_{_op}", view_func=_view(_resource, _op), methods=[_method]
    )


@bp.get("/openapi.json", endpoint="openapi")
def openapi_document() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API (public: it names no workspace)."""
    return json_response(openapi.document())
