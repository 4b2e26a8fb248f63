"""Two tenants: every workspace route tried across the boundary gets 404 and writes nothing.

The routes come from the URL map ("workspace.*" endpoints), so a route added later is tried too:
test_every_workspace_route_is_tried fails if the app has a workspace route these tests do not cover,
and the forged-id test fails for an id in a URL that tests/factories.py ID_MAKERS cannot make.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import (
    ANY_ID,
    CsrfClient,
    Factory,
    Route,
    TenantInfo,
    add_member,
    blueprint_routes,
    db_state,
    known_route,
    offset_ids,
    route_form,
    route_targets,
    unique,
    workspace_routes,
)

ROUTES = blueprint_routes()
WITH_IDS = [r for r in ROUTES if r.id_args]
POSTS = [r for r in ROUTES if r.method == "POST"]


def _ids(routes: list[Route]) -> list[str]:
    return [str(r) for r in routes]


def _client(app, email: str | None = None) -> CsrfClient:
    app.test_client_class = CsrfClient
    client = app.test_client()
    if email:
        client.sign_in(email)
    return client


def call(client: CsrfClient, route: Route, url: str, **kwargs):  # noqa: ANN201
    if route.method == "GET":
        return client.get(url, **kwargs)
    if route.method == "POST":
        return client.form(url, route_form(route), **kwargs)
    raise AssertionError(f"{route}: teach the isolation tests how to call {route.method}")


B_NAME = unique("Bravo Co ")


@pytest.fixture(scope="module")
def tenants(app) -> tuple[TenantInfo, TenantInfo]:
    """A, whose owner tries to reach across, and B, the target: nothing in these tests may change B."""
    factory = Factory(app)
    a = factory.tenant(roles=("owner", "admin", "sales"), name=unique("Alpha Co "))
    b = factory.tenant(roles=("owner", "admin", "sales", "support"), name=B_NAME)
    add_member(app, b, "read_only", active=False)
    offset_ids(app, b)  # B's role, company, ... ids are never also ids in A
    return a, b


@pytest.fixture(scope="module")
def a_owner(app, tenants) -> CsrfClient:
    return _client(app, tenants[0].owner_email)


@pytest.fixture(scope="module")
def outsider(app) -> CsrfClient:
    """Signed in, with an account but no workspace (A's owner is the outsider with one)."""
    return _client(app, Factory(app).user())


def _state(app, *infos: TenantInfo) -> dict:
    return db_state(app, "public", *(i.schema for i in infos))


def assert_hidden(resp, *names: str) -> None:
    """A 404 that gives nothing away about the workspace behind it."""
    assert resp.status_code == 404, resp.get_data(as_text=True)[:400]
    html = resp.get_data(as_text=True)
    for name in names:
        assert name not in html


def test_every_workspace_route_is_tried(app):
    """The real app's tenant URL space is exactly what these tests parametrize over."""
    assert workspace_routes(app.url_map) == ROUTES
    assert len(ROUTES) >= 13 and WITH_IDS and POSTS


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_other_tenants_slug_is_404_and_writes_nothing(app, tenants, a_owner, route):
    """The owner of A tries B's workspace, with B's real ids: 404, and no table anywhere changes."""
    a, b = tenants
    url = route.url(b.slug, route_targets(app, b, route, strict=False))
    before = _state(app, a, b)
    resp = call(a_owner, route, url)
    assert_hidden(resp, B_NAME, b.owner_email)
    assert _state(app, a, b) == before


@pytest.mark.parametrize("route", WITH_IDS, ids=_ids(WITH_IDS))
def test_forged_id_of_other_tenant_is_404_and_writes_nothing(app, tenants, a_owner, route):
    """The owner of A, in A, names a record of B (membership, invitation, role, ...): 404, nothing changes."""
    a, b = tenants
    ids = route_targets(app, b, route)
    url = route.url(a.slug, ids)
    before = _state(app, a, b)
    resp = call(a_owner, route, url)
    assert_hidden(resp, B_NAME)
    assert _state(app, a, b) == before


def test_own_ids_work_for_the_owner(app, tenants, a_owner):
    """The same requests with A's own records do go through (the 404s above are not a broken route)."""
    a, _b = tenants
    for route in filter(known_route, WITH_IDS):
        ids = route_targets(app, a, route)
        resp = call(a_owner, route, route.url(a.slug, ids))
        assert resp.status_code == (302 if route.method == "POST" else 200), f"{route}: {resp.status_code}"


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_unknown_slug_is_404(app, a_owner, route):
    slug = unique("nosuch")
    url = route.url(slug, dict.fromkeys(route.id_args, ANY_ID))
    assert call(a_owner, route, url).status_code == 404
    assert call(_client(app), route, url).status_code == 404


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_non_member_gets_404_not_403(app, tenants, outsider, route):
    """Signed in but not a member: the same 404 as a workspace that does not exist."""
    _a, b = tenants
    url = route.url(b.slug, dict.fromkeys(route.id_args, ANY_ID))
    assert_hidden(call(outsider, route, url), B_NAME, b.owner_email)


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
def test_anonymous_is_sent_to_sign_in(app, tenants, route):
    _a, b = tenants
    url = route.url(b.slug, dict.fromkeys(route.id_args, ANY_ID))
    resp = call(_client(app), route, url)
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [url]


@pytest.mark.parametrize("route", POSTS, ids=_ids(POSTS))
def test_post_without_csrf_token_is_400_and_writes_nothing(app, tenants, a_owner, route):
    """A's own owner, who may do all of it, still gets 400 without the form's token."""
    a, b = tenants
    url = route.url(a.slug, route_targets(app, a, route, strict=False))
    data = route_form(route)
    before = _state(app, a, b)
    resp = a_owner.post(url, data=data)
    assert resp.status_code == 400
    assert "Reload the page" in resp.get_data(as_text=True)
    assert _state(app, a, b) == before
    if known_route(route):
        # The same request with the token is accepted (so the 400 above was the token, nothing else).
        assert a_owner.form(url, data).status_code == 302


def test_post_with_a_forged_csrf_token_is_400_and_writes_nothing(app, tenants, a_owner):
    a, b = tenants
    forged = "IjNhNGY4ZDE2YjA3ZTJlOTQ4YzM2In0.ZmFrZQ.forged-signature"
    before = _state(app, a, b)
    for route in POSTS:
        url = route.url(a.slug, dict.fromkeys(route.id_args, ANY_ID))
        resp = a_owner.post(url, data={**route_form(route), "csrf_token": forged})
        assert resp.status_code == 400, route
        resp = a_owner.post(url, data=route_form(route), headers={"X-CSRFToken": forged})
        assert resp.status_code == 400, route
    assert _state(app, a, b) == before


def test_htmx_post_needs_the_csrf_header(app, tenants, a_owner):
    a, b = tenants
    route = next(r for r in POSTS if r.endpoint == "workspace.admin.invite")
    url = route.url(a.slug)
    before = _state(app, a, b)
    resp = a_owner.post(url, data=route_form(route), headers={"HX-Request": "true"})
    assert resp.status_code == 400
    assert _state(app, a, b) == before
    resp = a_owner.post(
        url, data=route_form(route), headers={"HX-Request": "true", "X-CSRFToken": a_owner.csrf_token()}
    )
    assert resp.status_code == 302
