"""The API tokens page (made once, listed, revoked, audited) and the OpenAPI document."""

from __future__ import annotations

import re

import pytest

from saas.permissions import BUILTIN_ROLES
from tests.factories import add_member, add_role, sql_value, unique
from tests.tenants.api.conftest import Api


def _new_token(client, slug: str, name: str) -> str:  # noqa: ANN001
    resp = client.form(f"/{slug}/api-tokens", {"name": name, "days": "30"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    page = client.get(f"/{slug}/api-tokens").get_data(as_text=True)
    found = re.search(r"crm_[A-Za-z0-9_\-]{43}", page)
    assert found and name in page
    return found.group(0)


def test_token_page_makes_shows_once_lists_and_revokes(app, crm, login):
    client = login("sales")
    name = unique("Sync script ")
    raw = _new_token(client, crm.slug, name)
    again = client.get(f"/{crm.slug}/api-tokens").get_data(as_text=True)
    assert raw not in again and raw[:12] in again and name in again  # shown once; the prefix stays
    api = Api(app.test_client(), crm.slug, raw)
    assert api.get("companies").status_code == 200

    # Only the hash is kept; the log records the token's making but neither token nor hash.
    digest = sql_value(app, f"select token_hash from {crm.schema}.api_tokens where name = :n", n=name)
    assert len(digest) == 64 and raw not in digest
    logged = sql_value(
        app,
        f"select string_agg(changes::text, ' ') from {crm.schema}.audit_log where entity = 'api_tokens'",
    )
    assert name in logged and raw not in logged and digest not in logged

    token_id = sql_value(app, f"select id from {crm.schema}.api_tokens where name = :n", n=name)
    # Someone else cannot revoke it.
    assert login("owner").form(f"/{crm.slug}/api-tokens/{token_id}/revoke").status_code == 404
    assert api.get("companies").status_code == 200
    assert client.form(f"/{crm.slug}/api-tokens/{token_id}/revoke").status_code == 302
    assert api.get("companies").status_code == 401
    assert (
        sql_value(
            app,
            f"select count(*) from {crm.schema}.audit_log where entity = 'api_tokens' and entity_id = :i"
            " and action = 'update' and changes ? 'revoked_at'",
            i=str(token_id),
        )
        == 1
    )


def test_token_form_errors(app, crm, login):
    client = login("owner")
    for data in ({"name": "", "days": "30"}, {"name": "x" * 81, "days": "30"}, {"name": "ok", "days": "7"}):
        resp = client.form(f"/{crm.slug}/api-tokens", data)
        assert resp.status_code == 422
        assert not re.search(r"crm_[A-Za-z0-9_\-]{43}", resp.get_data(as_text=True))


@pytest.mark.parametrize("role", tuple(BUILTIN_ROLES))
def test_every_builtin_role_may_have_tokens(app, crm, login, role):
    assert login(role).get(f"/{crm.slug}/api-tokens").status_code == 200


def test_a_role_without_customers_has_no_token_page(app, crm, make_client):
    role_id = add_role(app, crm, {"reports": ["view"]})
    _uid, email, _m = add_member(app, crm, f"custom:{role_id}")
    client = make_client()
    client.sign_in(email)
    assert client.get(f"/{crm.slug}/api-tokens").status_code == 403
    assert client.form(f"/{crm.slug}/api-tokens", {"name": "x", "days": "30"}).status_code == 403


# OpenAPI ---------------------------------------------------------------------------------------


def test_openapi_document_is_public_valid_and_matches_the_routes(app):
    from openapi_spec_validator import validate

    from tenants.api.openapi import openapi_path

    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    validate(doc)
    assert (
        doc["openapi"].startswith("3.1")
        and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    )

    in_app = {
        (openapi_path(rule.rule.removeprefix("/api/v1")), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    in_doc = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert in_app == in_doc and len(in_app) >= 20
    # Every operation but the document itself needs the bearer token.
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert ("security" in op) == (path == "/api/v1/openapi.json"), (path, method)
    company = doc["components"]["schemas"]["Company"]["properties"]
    assert (
        company["id"]["readOnly"] is True
        and "name" in doc["components"]["schemas"]["CompanyCreate"]["required"]
    )
    params = {p["name"] for p in doc["paths"]["/api/v1/{slug}/contacts"]["get"]["parameters"] if "name" in p}
    assert {"after", "limit", "sort", "name", "name__starts", "tags", "owner_id", "tags__empty"} <= params
