"""Roles against routes: every built-in role and custom roles, on every route of the platform
(the dashboard and workspace administration); every workspace route must name its permission.

What a role may do is derived from saas.permissions (BUILTIN_ROLES, RoleDef.allows) and the
view's `permission` attribute (set by @require), so a changed permission is checked at once.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from saas.permissions import BUILTIN_ROLES, RoleDef
from tests.factories import (
    CsrfClient,
    Factory,
    Route,
    TenantInfo,
    add_member,
    blueprint_routes,
    db_state,
    route_form,
    route_targets,
    unique,
    workspace_routes,
)

ALL_ROUTES = blueprint_routes()
# The routes of the platform itself; modules (customers, ...) test their own routes' permissions.
ROUTES = [
    r for r in ALL_ROUTES if r.endpoint == "workspace.dashboard" or r.endpoint.startswith("workspace.admin.")
]
ROLES = tuple(BUILTIN_ROLES)
# Routes open to every active member of the workspace (no @require).
OPEN = {"workspace.dashboard"}
# Checks a view makes beyond its @require, per method (the settings page: view to see, edit to save;
# proved by the custom role with settings view only below).
EXTRA = {("workspace.admin.settings", "POST"): (("settings", "edit"),)}
# What an allowed request answers (given route_targets()' records and route_form()'s form).
ALLOWED_STATUS = {"GET": 200, "POST": 302}
DENIED_TEXT = "Your role does not allow this"


def _ids(routes: list[Route]) -> list[str]:
    return [str(r) for r in routes]


def needs(app, route: Route) -> tuple[tuple[str, str], ...]:
    """The (module, action) pairs a role must allow for this route and method."""
    perm = getattr(app.view_functions[route.endpoint], "permission", None)
    if perm is None:
        assert route.endpoint in OPEN, f"{route} has no @require(module, action)"
        return EXTRA.get((route.endpoint, route.method), ())
    return (perm, *EXTRA.get((route.endpoint, route.method), ()))


def allows(app, role: RoleDef, route: Route) -> bool:
    return all(role.allows(module, action) for module, action in needs(app, route))


def call(client: CsrfClient, route: Route, url: str, **kwargs):  # noqa: ANN201
    if route.method == "GET":
        return client.get(url, **kwargs)
    if route.method == "POST":
        return client.form(url, route_form(route), **kwargs)
    raise AssertionError(f"{route}: teach the permission tests how to call {route.method}")


def check(app, tenant: TenantInfo, client: CsrfClient, route: Route, allowed: bool) -> None:
    """One request on fresh records of the tenant: the role's answer, and no write when refused."""
    url = route.url(tenant.slug, route_targets(app, tenant, route))
    before = db_state(app, "public", tenant.schema)
    resp = call(client, route, url)
    html = resp.get_data(as_text=True)
    if allowed:
        expected = ALLOWED_STATUS[route.method]
        assert resp.status_code == expected, (
            f"{route} allowed, expected {expected}, got {resp.status_code} "
            "(a new POST route may need a form in ROUTE_FORMS, tests/factories.py):\n" + html[:600]
        )
    else:
        assert resp.status_code == 403, f"{route} should be refused, got {resp.status_code}"
        assert DENIED_TEXT in html
        assert db_state(app, "public", tenant.schema) == before, f"{route}: a refused request wrote"


def _client(app, email: str | None = None) -> CsrfClient:
    app.test_client_class = CsrfClient
    client = app.test_client()
    if email:
        client.sign_in(email)
    return client


@pytest.fixture(scope="module")
def crm(app) -> TenantInfo:
    return Factory(app).tenant(roles=ROLES, name=unique("Roles Co "))


@pytest.fixture(scope="module")
def signed_in(app, crm):
    """role key -> a client signed in as that role's member of `crm` (signed in once per module)."""
    clients: dict[str, CsrfClient] = {}

    def get(role: str) -> CsrfClient:
        if role not in clients:
            clients[role] = _client(app, crm.email(role))
        return clients[role]

    return get


# The inventory ---------------------------------------------------------------------------------


def test_routes_are_the_apps_workspace_routes(app):
    assert workspace_routes(app.url_map) == ALL_ROUTES
    assert len(ROUTES) >= 13


def test_every_workspace_route_checks_a_permission(app):
    for route in workspace_routes(app.url_map):
        needs(app, route)  # fails for a route that is neither @require'd nor knowingly open


# Built-in roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
@pytest.mark.parametrize("role", ROLES)
def test_builtin_role_on_route(app, crm, signed_in, role, route):
    check(app, crm, signed_in(role), route, allows(app, BUILTIN_ROLES[role], route))


def test_each_builtin_role_is_refused_somewhere_or_is_an_admin(app):
    """Guards the table itself: only owner and admin may do everything on these routes."""
    for key, role in BUILTIN_ROLES.items():
        everything = all(allows(app, role, r) for r in ROUTES)
        assert everything == (key in ("owner", "admin")), key


@pytest.mark.parametrize("path", ["/admin/people", "/admin/audit", "/admin/settings"])
def test_htmx_refusal_is_a_short_message(app, crm, signed_in, path):
    client = signed_in("read_only")
    url = f"/{crm.slug}{path}"
    resp = client.get(url, headers={"HX-Request": "true"})
    assert resp.status_code == 403
    html = resp.get_data(as_text=True).strip()
    assert html.startswith("<div") and 'role="alert"' in html and DENIED_TEXT in html
    assert "<html" not in html.lower() and "<nav" not in html and len(html) < 500
    assert "HX-Request" in ", ".join(resp.headers.get_all("Vary"))
    # Without htmx, or when htmx restores history, the full error page.
    for headers in ({}, {"HX-Request": "true", "HX-History-Restore-Request": "true"}):
        full = client.get(url, headers=headers)
        assert full.status_code == 403
        assert "<html" in full.get_data(as_text=True).lower() and DENIED_TEXT in full.get_data(as_text=True)


def test_htmx_post_refusal_is_a_short_message(app, crm, signed_in):
    client = signed_in("sales")
    before = db_state(app, "public", crm.schema)
    resp = client.post(
        f"/{crm.slug}/admin/people/invite",
        data={"email": f"{unique('x')}@example.com", "role": "sales"},
        headers={"HX-Request": "true", "X-CSRFToken": client.csrf_token()},
    )
    assert resp.status_code == 403
    assert "<html" not in resp.get_data(as_text=True).lower()
    assert DENIED_TEXT in resp.get_data(as_text=True)
    assert db_state(app, "public", crm.schema) == before


# Custom roles ----------------------------------------------------------------------------------

MATRICES: dict[str, dict[str, list[str]]] = {
    "nothing": {},
    "people-viewer": {"users": ["view"], "audit": ["view"], "customers": ["export", "view"]},
    "people-manager": {"users": ["create", "edit", "view"], "settings": ["view"]},
    "settings-and-delete": {"settings": ["edit", "view"], "users": ["delete", "view"]},
}


def _role_fields(name: str, matrix: dict[str, list[str]], junk: bool = True) -> dict:
    fields: dict = {"name": name, "description": "made on the roles page", "visibility": "all"}
    for module, actions in matrix.items():
        fields[f"perm-{module}"] = list(actions)
    if junk:  # not in the matrix: must grant nothing
        fields["perm-nosuchmodule"] = ["view", "edit"]
        fields.setdefault("perm-reports", []).append("superpower")
    return fields


def _stored_role(app, tenant: TenantInfo, name: str):  # noqa: ANN202
    from saas import tenancy
    from saas.extensions import db
    from tenants.admin.models import Role

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        role = db.session.scalar(select(Role).where(Role.name == name))
        db.session.expunge_all()
        db.session.remove()
    return role


def _membership(app, membership_id: int):  # noqa: ANN202
    from saas.extensions import db
    from saas.models import Membership

    with app.app_context():
        m = db.session.get(Membership, membership_id)
        db.session.expunge_all()
        db.session.remove()
    return m


@pytest.fixture(scope="module")
def custom(app, crm, signed_in):
    """matrix name -> (role id, client of a member holding that role, given through the people page).

    Each role is made once on the roles page; one member (signed in once) is moved between them.
    """
    roles: dict[str, int] = {}
    _uid, email, membership_id = add_member(app, crm, "read_only")
    member = _client(app, email)
    owner = signed_in("owner")

    def get(key: str) -> tuple[int, CsrfClient]:
        if key not in roles:
            name = unique(f"Custom {key} ")
            resp = owner.form(f"/{crm.slug}/admin/roles/new", _role_fields(name, MATRICES[key]))
            assert resp.status_code == 302, resp.get_data(as_text=True)[:600]
            role = _stored_role(app, crm, name)
            assert role.permissions == MATRICES[key]  # exactly the matrix, junk dropped
            roles[key] = role.id
        role_key = f"custom:{roles[key]}"
        if _membership(app, membership_id).role != role_key:
            resp = owner.form(f"/{crm.slug}/admin/people/{membership_id}/role", {"role": role_key})
            assert resp.status_code == 302
            assert _membership(app, membership_id).role == role_key
        return roles[key], member

    return get


@pytest.mark.parametrize("route", ROUTES, ids=_ids(ROUTES))
@pytest.mark.parametrize("matrix", list(MATRICES))
def test_custom_role_grants_exactly_its_matrix(app, crm, custom, matrix, route):
    _role_id, client = custom(matrix)
    role = RoleDef("custom", "custom", {m: set(a) for m, a in MATRICES[matrix].items()})
    check(app, crm, client, route, allows(app, role, route))


def test_editing_a_custom_role_applies_at_once(app, crm, signed_in, custom):
    role_id, client = custom("people-viewer")
    owner = signed_in("owner")
    invite = f"/{crm.slug}/admin/people/invite"
    form = {"email": f"{unique('e')}@example.com", "role": "read_only"}
    assert client.form(invite, form).status_code == 403
    name = _role_name(app, crm, role_id)
    matrix = {**MATRICES["people-viewer"], "users": ["create", "view"]}
    resp = owner.form(f"/{crm.slug}/admin/roles/{role_id}", _role_fields(name, matrix, junk=False))
    assert resp.status_code == 302
    try:
        assert client.form(invite, form).status_code == 302  # same session, no sign-in again
    finally:
        fields = _role_fields(name, MATRICES["people-viewer"], junk=False)
        assert owner.form(f"/{crm.slug}/admin/roles/{role_id}", fields).status_code == 302
    assert client.form(invite, {**form, "email": f"{unique('e')}@example.com"}).status_code == 403


def _role_name(app, tenant: TenantInfo, role_id: int) -> str:
    from saas import tenancy
    from saas.extensions import db
    from tenants.admin.models import Role

    with app.app_context(), tenancy.bound(tenant.id, tenant.schema, tenant.slug):
        name = db.session.get(Role, role_id).name
        db.session.remove()
    return name


def test_custom_role_in_use_cannot_be_deleted(app, crm, signed_in, custom):
    role_id, _client_ = custom("nothing")
    owner = signed_in("owner")
    before = db_state(app, "public", crm.schema)
    resp = owner.form(f"/{crm.slug}/admin/roles/{role_id}/delete")
    assert resp.status_code == 302
    assert "People still have this role" in owner.get(f"/{crm.slug}/admin/roles").get_data(as_text=True)
    assert db_state(app, "public", crm.schema) == before


# Owners, deactivation --------------------------------------------------------------------------

LAST_OWNER = "A workspace needs at least one owner"
ONLY_OWNER = "Only an owner can give or take away the owner role."


def test_last_owner_cannot_be_demoted_or_deactivated(app, crm, signed_in):
    owner, admin = signed_in("owner"), signed_in("admin")
    people = f"/{crm.slug}/admin/people/{crm.membership('owner')}"
    attempts = [
        (owner, "role", {"role": "admin"}, LAST_OWNER),
        (owner, "deactivate", {}, LAST_OWNER),
        (admin, "role", {"role": "sales"}, ONLY_OWNER),
        (admin, "deactivate", {}, ONLY_OWNER),
    ]
    for client, action, data, message in attempts:
        before = db_state(app, "public", crm.schema)
        resp = client.form(f"{people}/{action}", data)
        assert resp.status_code == 422, (action, resp.status_code)
        assert message in resp.get_data(as_text=True)
        assert db_state(app, "public", crm.schema) == before
        m = _membership(app, crm.membership("owner"))
        assert (m.role, m.is_active) == ("owner", True)
    assert owner.get(f"/{crm.slug}/admin/people").status_code == 200


def test_only_an_owner_makes_an_owner(app, factory, make_client):
    t = factory.tenant(roles=("owner", "admin", "sales"))
    owner, admin = make_client(), make_client()
    owner.sign_in(t.owner_email)
    admin.sign_in(t.email("admin"))
    people = f"/{t.slug}/admin/people"
    sales_role = f"{people}/{t.membership('sales')}/role"
    owner_role = f"{people}/{t.membership('owner')}/role"

    before = db_state(app, "public", t.schema)
    resp = admin.form(sales_role, {"role": "owner"})
    assert resp.status_code == 422
    assert ONLY_OWNER in resp.get_data(as_text=True)
    resp = admin.form(f"{people}/invite", {"email": f"{unique('o')}@example.com", "role": "owner"})
    assert resp.status_code == 422
    assert "Only an owner can invite another owner." in resp.get_data(as_text=True)
    assert db_state(app, "public", t.schema) == before
    assert _membership(app, t.membership("sales")).role == "sales"

    assert owner.form(sales_role, {"role": "owner"}).status_code == 302
    assert _membership(app, t.membership("sales")).role == "owner"
    # With a second owner, the first may step down; then the new one is the last owner.
    assert owner.form(owner_role, {"role": "admin"}).status_code == 302
    assert _membership(app, t.membership("owner")).role == "admin"
    resp = owner.form(sales_role, {"role": "admin"})
    assert resp.status_code == 422
    assert ONLY_OWNER in resp.get_data(as_text=True)
    assert _membership(app, t.membership("sales")).role == "owner"


def test_role_change_applies_on_the_next_request(app, crm, signed_in):
    _uid, email, membership_id = add_member(app, crm, "admin")
    owner, admin = signed_in("owner"), _client(app, email)
    assert admin.get(f"/{crm.slug}/admin/audit").status_code == 200
    assert owner.form(f"/{crm.slug}/admin/people/{membership_id}/role", {"role": "sales"}).status_code == 302
    assert admin.get(f"/{crm.slug}/admin/audit").status_code == 403
    assert admin.get(f"/{crm.slug}/").status_code == 200


def test_deactivation_ends_the_live_session_and_reactivation_restores_it(app, crm, signed_in):
    _uid, email, membership_id = add_member(app, crm, "sales")
    owner, sales = signed_in("owner"), _client(app, email)
    home = f"/{crm.slug}/"
    assert sales.get(home).status_code == 200

    resp = owner.form(f"/{crm.slug}/admin/people/{membership_id}/deactivate")
    assert resp.status_code == 302
    assert _membership(app, membership_id).is_active is False
    # The very next request of the still signed-in person: gone, as if the workspace did not exist.
    assert sales.get(home).status_code == 404
    assert sales.get(f"/{crm.slug}/admin/people").status_code == 404
    before = db_state(app, "public", crm.schema)
    resp = sales.form(f"/{crm.slug}/admin/people/invite", {"email": "x@example.com", "role": "sales"})
    assert resp.status_code == 404
    assert db_state(app, "public", crm.schema) == before
    assert home not in sales.get("/workspaces").get_data(as_text=True)
    # Signing in again does not bring the workspace back.
    again = _client(app)
    assert again.sign_in(email).headers["Location"] != home
    assert again.get(home).status_code == 404

    assert owner.form(f"/{crm.slug}/admin/people/{membership_id}/reactivate").status_code == 302
    assert sales.get(home).status_code == 200  # the same session is let back in
    fresh = _client(app)
    assert fresh.sign_in(email).headers["Location"] == home
    assert fresh.get(home).status_code == 200
