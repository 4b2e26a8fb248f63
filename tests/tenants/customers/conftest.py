"""Fixtures of the Customer 360 tests: a workspace with a member in every role, and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from argon2 import PasswordHasher

from saas.permissions import BUILTIN_ROLES
from tests.factories import CsrfClient, Factory, TenantInfo, unique

# Argon2id at its smallest cost: sign-ins in these tests are about records, not password strength.
_QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module", autouse=True)
def _quick_hasher():
    from saas import accounts

    strong = accounts._hasher
    accounts._hasher = _QUICK_HASHER
    yield
    accounts._hasher = strong


@pytest.fixture(scope="module")
def crm(app, _quick_hasher) -> TenantInfo:
    """A workspace with one member per built-in role."""
    return Factory(app).tenant(roles=tuple(BUILTIN_ROLES), name=unique("Customers Co "))


@pytest.fixture(scope="module")
def other(app, _quick_hasher) -> TenantInfo:
    """A second workspace, for the isolation tests."""
    return Factory(app).tenant(roles=("owner", "sales"), name=unique("Other Co "))


@pytest.fixture(scope="module")
def login(app, crm):
    """role -> a client signed in as that role's member of `crm` (once per module)."""
    clients: dict[tuple[str, str], CsrfClient] = {}

    def get(role: str, tenant: TenantInfo | None = None) -> CsrfClient:
        info = tenant or crm
        key = (info.slug, role)
        if key not in clients:
            app.test_client_class = CsrfClient
            client = app.test_client()
            client.sign_in(info.email(role))
            clients[key] = client
        return clients[key]

    return get


@contextmanager
def in_tenant(app, info: TenantInfo) -> Iterator[None]:
    """A request context bound to the tenant, for calling services directly."""
    from saas import tenancy
    from saas.extensions import db

    with app.test_request_context(), tenancy.bound(info.id, info.schema, info.slug):
        try:
            yield
        finally:
            db.session.rollback()
            db.session.remove()


@pytest.fixture
def bound(app):
    def enter(info: TenantInfo):
        return in_tenant(app, info)

    return enter


def viewer_of(info: TenantInfo, role: str):
    from tenants.customers.people import Viewer

    return Viewer(info.people[role][0], BUILTIN_ROLES[role].visibility)
