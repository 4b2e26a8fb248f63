"""Who gets in: tokens (revoked, expired, other workspace, no cookie), roles, rate limits, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saas.permissions import BUILTIN_ROLES
from tenants.api.resources import routes
from tests.factories import add_member, db_state, unique
from tests.tenants.api.conftest import Api, error_of, make_token
from tests.tenants.customers.routes import customer_target

ROUTES = routes()
ROLES = tuple(BUILTIN_ROLES)
ARG = {"companies": "company_id", "contacts": "contact_id", "activities": "activity_id", "tasks": "task_id"}
STATUS = {"list": 200, "get": 200, "create": 201, "update": 200, "delete": 204}


def _ids(routes_: list) -> list[str]:
    return [f"{method} {r.name} {op}" for r, op, _rule, method in routes_]


def _path(resource, op: str, record_id: int | None) -> str:  # noqa: ANN001
    return resource.name if op in ("list", "create") else f"{resource.name}/{record_id}"


def _request(app, info, client: Api, resource, op: str, record_id: int | None, company_id: int):  # noqa: ANN001, ANN202
    """One valid request of the operation (records made by customer_target)."""
    path = _path(resource, op, record_id)
    if op == "list":
        return client.get(path + (f"?company_id={company_id}" if resource.name == "activities" else ""))
    if op == "get":
        return client.get(path)
    if op == "delete":
        return client.delete(path)
    body = {
        "companies": {"name": unique("Co ")},
        "contacts": {"first_name": unique("Ann ")},
        "activities": {"kind": "note", "body": "hello", "company_id": company_id},
        "tasks": {"title": unique("Task ")},
    }[resource.name]
    return client.post(path, body) if op == "create" else client.patch(path, body)


def execute(app, sql: str, **params: object) -> None:  # noqa: ANN001
    from sqlalchemy import text

    from saas.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(sql), params)


def _state(app, *infos) -> dict:  # noqa: ANN001
    """Every row of these workspaces and the shared schema, but when a token was last used."""
    state = db_state(app, "public", *(i.schema for i in infos))
    return {k: v for k, v in state.items() if not k.endswith(".api_tokens")}


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
@pytest.mark.parametrize("role", ROLES)
def test_builtin_role_on_api_route(app, crm, api, role, route):
    """Each role's permissions decide, as on the pages; a refusal is a JSON 403 that writes nothing."""
    resource, op, _rule, _method = route
    module, action = resource.permissions[op]
    allowed = BUILTIN_ROLES[role].allows(module, action)
    company_id = customer_target(app, crm, "company_id")
    record_id = customer_target(app, crm, ARG[resource.name]) if op in ("get", "update", "delete") else None
    if resource.name == "activities" and record_id:  # an entry may be deleted by its author
        execute(
            app,
            f"update {crm.schema}.activities set user_id = :u where id = :i",
            u=crm.people[role][0],
            i=record_id,
        )
    client = api(role)
    before = _state(app, crm)
    resp = _request(app, crm, client, resource, op, record_id, company_id)
    if allowed:
        assert resp.status_code == STATUS[op], (role, route, resp.get_json())
    else:
        assert resp.status_code == 403, (role, route, resp.status_code)
        assert error_of(resp)["code"] == "forbidden"
        assert _state(app, crm) == before


def test_read_only_cannot_post(app, crm, api):
    resp = api("read_only").post("companies", {"name": "Nope"})
    assert resp.status_code == 403 and resp.mimetype == "application/json"
    assert error_of(resp)["code"] == "forbidden"


# Tokens ----------------------------------------------------------------------------------------


def test_no_token_or_a_bad_one_is_401(app, crm, login):
    bad = [
        Api(app.test_client(), crm.slug, None),
        Api(app.test_client(), crm.slug, "crm_" + "x" * 43),
        Api(app.test_client(), crm.slug, "not-even-ours"),
    ]
    for client in bad:
        resp = client.get("companies")
        assert resp.status_code == 401 and error_of(resp)["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # A signed-in browser session is not a way in: its cookies are ignored.
    browser = login("owner")
    assert browser.get(f"/{crm.slug}/customers/companies").status_code == 200
    for method in ("GET", "POST"):
        resp = browser.open(f"/api/v1/{crm.slug}/companies", method=method, json={"name": "x"})
        assert resp.status_code == 401
    resp = browser.get(
        f"/api/v1/{crm.slug}/companies", headers={"Authorization": "Basic " + "b3duZXI6cGFzcw=="}
    )
    assert resp.status_code == 401


def test_revoked_expired_and_departed_tokens_are_401(app, crm):
    from saas.extensions import db
    from tenants.api import tokens
    from tenants.api.models import ApiToken
    from tests.tenants.customers.conftest import in_tenant

    revoked, expired = make_token(app, crm), make_token(app, crm, days=30)
    for raw in (revoked, expired):
        assert Api(app.test_client(), crm.slug, raw).get("companies").status_code == 200
    with in_tenant(app, crm):
        row = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == tokens.digest(revoked)))
        tokens.revoke(crm.people["owner"][0], row.id)
        row = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == tokens.digest(expired)))
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    for raw in (revoked, expired):
        assert Api(app.test_client(), crm.slug, raw).get("companies").status_code == 401

    user_id, _email, _m = add_member(app, crm, "sales")
    info = type(crm)(crm.id, crm.slug, crm.schema, crm.owner_email, {"leaver": (user_id, "", 0)})
    raw = make_token(app, info, "leaver")
    assert Api(app.test_client(), crm.slug, raw).get("companies").status_code == 200
    execute(app, "update public.memberships set is_active = false where user_id = :u", u=user_id)
    assert Api(app.test_client(), crm.slug, raw).get("companies").status_code == 401


def test_rate_limit_per_token_is_429_with_retry_after(app, crm, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", (3, 60))
    first = Api(app.test_client(), crm.slug, make_token(app, crm))
    second = Api(app.test_client(), crm.slug, make_token(app, crm))
    assert [first.get("companies").status_code for _ in range(3)] == [200, 200, 200]
    resp = first.get("companies")
    assert resp.status_code == 429 and error_of(resp)["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert first.post("companies", {"name": "x"}).status_code == 429
    assert second.get("companies").status_code == 200  # per token


# Across workspaces -----------------------------------------------------------------------------


def test_token_of_one_workspace_is_401_on_another(app, crm, other, api):
    a_token = api("owner").token
    for resource, op, _rule, _method in ROUTES:
        client = Api(app.test_client(), other.slug, a_token)
        resp = _request(app, other, client, resource, op, 1, 1)
        assert resp.status_code == 401, (resource.name, op, resp.status_code)
    unknown = Api(app.test_client(), unique("nosuch"), a_token)
    assert unknown.get("companies").status_code == 401


ID_ROUTES = [r for r in ROUTES if r[1] in ("get", "update", "delete")]


@pytest.mark.parametrize("route", ID_ROUTES, ids=_ids(ID_ROUTES))
def test_forged_id_of_another_workspace_is_404_and_writes_nothing(app, crm, other, api, route):
    resource, op, _rule, _method = route
    b_id = customer_target(app, other, ARG[resource.name])
    a_company = customer_target(app, crm, "company_id")
    a = api("owner")
    a.get("companies")  # the token's use is noted before the state is taken
    before = db_state(app, "public", crm.schema, other.schema)
    resp = _request(app, crm, a, resource, op, b_id, a_company)
    assert resp.status_code == 404, resp.get_json()
    assert error_of(resp)["code"] == "not_found"
    after = db_state(app, "public", crm.schema, other.schema)
    assert after == before


def test_references_to_another_workspace_are_refused(app, crm, other, api):
    a = api("owner")
    b_company = customer_target(app, other, "company_id")
    b_contact = customer_target(app, other, "contact_id")
    a.get("companies")
    before = db_state(app, "public", crm.schema, other.schema)
    for resp, status in (
        (a.post("activities", {"kind": "note", "body": "x", "company_id": b_company}), 404),
        (a.post("activities", {"kind": "call", "subject": "x", "contact_id": b_contact}), 404),
        (a.post("tasks", {"title": "x", "company_id": b_company}), 404),
        (a.post("contacts", {"first_name": "x", "company_id": b_company}), 422),
        (a.get(f"activities?company_id={b_company}"), 404),
    ):
        assert resp.status_code == status, resp.get_json()
    assert db_state(app, "public", crm.schema, other.schema) == before
