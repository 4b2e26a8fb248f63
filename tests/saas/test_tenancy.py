"""Fail-closed tenancy: nothing bound means an error, never rows; bound means that tenant's rows only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import ProgrammingError, StatementError

from saas import tenancy
from saas.extensions import db
from saas.models import Membership
from saas.tenancy import TenantNotBound
from tenants.admin.models import AuditEvent, Role
from tests.factories import Factory, add_role, unique


@pytest.fixture(scope="module")
def two(app):
    """Tenants A and B, each with a custom role whose name marks its tenant."""
    factory = Factory(app)
    a = factory.tenant(name=unique("Alpha "))
    b = factory.tenant(name=unique("Bravo "))
    markers = {}
    for info in (a, b):
        markers[info.slug] = unique(f"Only-{info.slug}-")
        add_role(app, info, {"customers": ["view"]}, name=markers[info.slug])
    return a, b, markers


def assert_not_bound(run: Callable[[], object]) -> None:
    """`run` must fail with TenantNotBound (bare, or wrapped by SQLAlchemy), never return rows."""
    with pytest.raises((TenantNotBound, StatementError)) as info:
        result = run()
        pytest.fail(f"returned {result!r} with no tenant bound")
    err = info.value
    if isinstance(err, StatementError):
        assert isinstance(err.orig, TenantNotBound), repr(err)


# Unbound: every way of reading or writing a tenant table raises ------------------------------------

UNBOUND_QUERIES: dict[str, Callable[[], object]] = {
    "orm select AuditEvent": lambda: db.session.scalars(select(AuditEvent)).all(),
    "orm select Role": lambda: db.session.scalars(select(Role)).all(),
    "orm count AuditEvent": lambda: db.session.scalar(select(func.count()).select_from(AuditEvent)),
    "orm get Role": lambda: db.session.get(Role, 1),
    "orm legacy query": lambda: Role.query.all(),
    "orm shared table filtered by a tenant subquery": lambda: db.session.scalars(
        select(Membership).where(Membership.user_id.in_(select(AuditEvent.user_id)))
    ).all(),
    "core select via session": lambda: db.session.execute(select(AuditEvent.__table__)).all(),
    "core select via engine": lambda: _on_engine(lambda c: c.execute(select(Role.__table__)).all()),
    "core insert via engine": lambda: _on_engine(
        lambda c: c.execute(insert(Role.__table__).values(name=unique("x"), permissions={}))
    ),
    "core update via engine": lambda: _on_engine(
        lambda c: c.execute(update(Role.__table__).values(name="x"))
    ),
    "core delete via engine": lambda: _on_engine(lambda c: c.execute(delete(AuditEvent.__table__))),
    "orm flush of a new row": lambda: _flush(Role(name=unique("x"), permissions={})),
    "require_tenant": tenancy.require_tenant,
    "qualified": lambda: tenancy.qualified("roles"),
}


def _on_engine(run: Callable) -> object:
    with db.engine.begin() as conn:
        return run(conn)


def _flush(obj: object) -> None:
    db.session.add(obj)
    db.session.flush()


@pytest.mark.parametrize("name", list(UNBOUND_QUERIES))
def test_unbound_query_raises(two, ctx, name):
    a, b, _markers = two
    before = _counts(a, b)
    assert tenancy.current_tenant() is None
    assert_not_bound(UNBOUND_QUERIES[name])
    db.session.rollback()
    assert _counts(a, b) == before, "nothing may be written with no tenant bound"


def _counts(*infos) -> dict[str, tuple[int, int]]:
    out = {}
    for info in infos:
        with tenancy.bound(info.id, info.schema, info.slug):
            out[info.slug] = (
                db.session.scalar(select(func.count()).select_from(Role)),
                db.session.scalar(select(func.count()).select_from(AuditEvent)),
            )
    db.session.rollback()
    return out


def test_placeholder_schema_does_not_exist(ctx):
    """Raw SQL that names the placeholder (not rewritten by the map) finds nothing to read."""
    assert db.session.scalar(text("select count(*) from pg_namespace where nspname = 'tenant'")) == 0
    with pytest.raises(ProgrammingError, match="tenant"):
        db.session.execute(text("select * from tenant.roles")).all()
    db.session.rollback()


# Bound: only that tenant's rows ---------------------------------------------------------------------


def test_bound_sees_only_its_own_rows(two, ctx):
    a, b, markers = two
    for me, other in ((a, b), (b, a)):
        with tenancy.bound(me.id, me.schema, me.slug):
            orm_names = set(db.session.scalars(select(Role.name)))
            with db.engine.connect() as conn:
                core_names = set(conn.scalars(select(Role.__table__.c.name)))
            raw_names = set(db.session.scalars(text(f"select name from {tenancy.qualified('roles')}")))
            emails = set(
                db.session.scalars(select(AuditEvent.user_email).where(AuditEvent.user_email.is_not(None)))
            )
        db.session.remove()  # one unit of work per tenant
        for names in (orm_names, core_names, raw_names):
            assert markers[me.slug] in names
            assert markers[other.slug] not in names
        assert other.owner_email not in emails


def test_rebinding_in_one_connection_follows_the_binding(two, ctx):
    """The map resolves at execution time: a cached statement on a pooled connection never keeps a schema."""
    a, b, markers = two
    stmt = select(Role.__table__.c.name)
    with db.engine.connect() as conn:
        for info in (a, b, a, b):
            with tenancy.bound(info.id, info.schema, info.slug):
                names = set(conn.scalars(stmt))
            assert markers[info.slug] in names
            assert markers[(b if info is a else a).slug] not in names
        assert_not_bound(lambda: conn.scalars(stmt).all())


def test_bound_writes_land_in_the_bound_schema(two, ctx):
    a, b, _markers = two
    name = unique("Written-in-A-")
    with tenancy.bound(a.id, a.schema, a.slug):
        db.session.add(Role(name=name, permissions={}))
        db.session.commit()
    db.session.remove()
    for info, expected in ((a, 1), (b, 0)):
        with tenancy.bound(info.id, info.schema, info.slug):
            assert db.session.scalar(select(func.count()).where(Role.name == name)) == expected
        db.session.remove()


# The helpers refuse bad names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Roles",
        "roles; drop table roles",
        "roles--",
        'roles"',
        '"roles"',
        "public.users",
        "1roles",
        "roles ",
        "roles\n",
        "rôles",
        "../roles",
    ],
)
def test_qualified_refuses_bad_names(two, ctx, name):
    a, _b, _markers = two
    with tenancy.bound(a.id, a.schema, a.slug), pytest.raises(ValueError):
        tenancy.qualified(name)


def test_qualified_quotes_the_bound_schema(two, ctx):
    a, _b, _markers = two
    with tenancy.bound(a.id, a.schema, a.slug):
        assert tenancy.qualified("audit_log") == f'"{a.schema}"."audit_log"'
    with pytest.raises(TenantNotBound):
        tenancy.qualified("audit_log")


@pytest.mark.parametrize(
    "schema",
    [
        "",
        "public",
        "tenant",
        "pg_catalog",
        "information_schema",
        "t_",
        "t_abc",
        "T_1",
        "t1",
        "t_-1",
        "t_1 ",
        " t_1",
        "t_1\n",
        "t_1a",
        "t_1.roles",
        't_1"; drop schema public cascade; --',
        "t_\u0661",  # a non-ASCII digit
        "acme",
    ],
)
def test_bind_refuses_names_that_are_not_tenant_schemas(schema):
    with pytest.raises(ValueError):
        tenancy.bind(1, schema, "acme")
    assert tenancy.current_tenant() is None


def test_bind_accepts_a_registry_schema_name():
    token = tenancy.bind(12, "t_12", "acme")
    try:
        assert tenancy.require_tenant() == tenancy.BoundTenant(12, "t_12", "acme")
    finally:
        tenancy.unbind(token)
    assert tenancy.current_tenant() is None


# Per request: bound while it runs, unbound after ----------------------------------------------------


def test_each_request_unbinds(app, two, make_client):
    a, b, markers = two
    alice, bob = make_client(), make_client()
    alice.sign_in(a.owner_email)
    bob.sign_in(b.owner_email)

    page = alice.get(f"/{a.slug}/admin/roles")
    assert page.status_code == 200
    assert markers[a.slug] in page.get_data(as_text=True)
    assert tenancy.current_tenant() is None

    page = bob.get(f"/{b.slug}/admin/roles")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert markers[b.slug] in html and markers[a.slug] not in html
    assert tenancy.current_tenant() is None

    # Also after a refusal and after an error raised past the binding.
    assert alice.get(f"/{b.slug}/admin/roles").status_code == 404
    assert tenancy.current_tenant() is None
    assert alice.get(f"/{a.slug}/admin/roles/999999").status_code == 404
    assert tenancy.current_tenant() is None
    page = bob.get(f"/{b.slug}/admin/roles")
    assert markers[b.slug] in page.get_data(as_text=True) and markers[a.slug] not in page.get_data(
        as_text=True
    )


def test_a_request_starts_unbound_even_if_something_leaked(app, two, make_client):
    """A binding left over in the serving thread (a bug elsewhere) does not carry into the next request."""
    a, b, markers = two
    bob = make_client()
    bob.sign_in(b.owner_email)
    token = tenancy.bind(a.id, a.schema, a.slug)
    try:
        html = bob.get(f"/{b.slug}/admin/roles").get_data(as_text=True)
        assert markers[b.slug] in html and markers[a.slug] not in html
        # Anonymous pages outside the workspace see no tenant either.
        assert bob.get("/healthz").status_code == 200
    finally:
        tenancy.unbind(token)
