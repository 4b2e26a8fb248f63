"""Every built-in role against every Customer 360 route: allowed answers, refusals write nothing.

What a role may do comes from saas.permissions and each view's @require (view.permission), so a
route added to the module is checked the day it is added (test_every_customers_route_is_covered).
"""

from __future__ import annotations

import pytest

from saas.permissions import BUILTIN_ROLES
from tests.factories import db_state, workspace_routes
from tests.tenants.customers.routes import CUSTOMER_ARGS, customer_form, customer_target


def _routes():
    from tests.factories import blueprint_routes

    return [r for r in blueprint_routes() if r.endpoint.startswith("workspace.customers.")]


ROUTES = _routes()
ROLES = tuple(BUILTIN_ROLES)
ALLOWED_STATUS = {"GET": 200, "POST": 302}


def test_every_customers_route_is_covered(app):
    mine = [r for r in workspace_routes(app.url_map) if r.endpoint.startswith("workspace.customers.")]
    assert mine == ROUTES and len(ROUTES) >= 35
    for route in ROUTES:
        assert set(route.id_args) <= set(CUSTOMER_ARGS), route
        assert getattr(app.view_functions[route.endpoint], "permission", None), f"{route} has no @require"
        if route.method == "POST":
            assert customer_form(route.endpoint) is not None


@pytest.mark.parametrize("route", ROUTES, ids=[str(r) for r in ROUTES])
@pytest.mark.parametrize("role", ROLES)
def test_builtin_role_on_route(app, crm, login, role, route):
    module, action = app.view_functions[route.endpoint].permission
    allowed = BUILTIN_ROLES[role].allows(module, action)
    url = route.url(crm.slug, {arg: customer_target(app, crm, arg) for arg in route.id_args})
    client = login(role)
    before = db_state(app, "public", crm.schema)
    if route.method == "GET":
        resp = client.get(url)
    else:
        resp = client.form(url, customer_form(route.endpoint))
    html = resp.get_data(as_text=True)
    if allowed:
        assert resp.status_code == ALLOWED_STATUS[route.method], (
            f"{role} {route}: {resp.status_code}\n{html[:800]}"
        )
    else:
        assert resp.status_code == 403, f"{role} {route} should be refused, got {resp.status_code}"
        assert "Your role does not allow this" in html
        assert db_state(app, "public", crm.schema) == before, f"{role} {route}: a refused request wrote"


def test_each_role_is_refused_somewhere_except_owner_and_admin(app):
    for key, role in BUILTIN_ROLES.items():
        everything = all(role.allows(*app.view_functions[r.endpoint].permission) for r in ROUTES)
        assert everything == (key in ("owner", "admin")), key
