"""The pool of ready tenant schemas: sign-up claims one, a failure puts it back, stale ones go."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.factories import PASSWORD, unique


def _pool(db) -> list[tuple[int, str, str]]:
    return [
        tuple(r)
        for r in db.session.execute(text("select tenant_id, schema_name, revision from public.schema_pool"))
    ]


def _schema_exists(db, name: str) -> bool:
    return bool(
        db.session.execute(
            text("select 1 from information_schema.schemata where schema_name = :s"), {"s": name}
        ).first()
    )


@pytest.fixture
def empty_pool(app):
    from saas.extensions import db
    from saas.migrate import discard_stale_pool

    def drain() -> None:
        with app.app_context():
            with db.engine.begin() as conn:
                for schema in conn.execute(
                    text("delete from public.schema_pool returning schema_name")
                ).scalars():
                    conn.exec_driver_sql(f'drop schema "{schema}" cascade')
            discard_stale_pool(db.engine)

    drain()
    yield
    drain()


def test_signup_claims_a_pooled_schema_and_the_job_refills(app, client, empty_pool, monkeypatch):
    from saas.extensions import db
    from saas.migrate import fill_schema_pool, tenant_head
    from saas.models import Tenant
    from tests.factories import run_jobs

    with app.app_context():
        assert fill_schema_pool(db.engine, 2) == 2
        assert fill_schema_pool(db.engine, 2) == 0  # already full: nothing more
        pooled = sorted(_pool(db))
        assert [r[2] for r in pooled] == [tenant_head()] * 2
        db.session.remove()

    monkeypatch.setitem(app.config, "SCHEMA_POOL_SIZE", 2)
    slug = unique("pool")
    resp = client.form(
        "/signup",
        {
            "company": "Pool Co",
            "slug": slug,
            "name": "Pat",
            "email": f"{slug}@example.com",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True).split("invalid-feedback")[1:3]
    with app.app_context():
        tenant = db.session.query(Tenant).filter_by(slug=slug).one()
        assert (tenant.id, tenant.schema_name) == (pooled[0][0], pooled[0][1])  # the oldest pooled schema
        assert [r[0] for r in _pool(db)] == [pooled[1][0]]
        version = db.session.execute(
            text("select revision from public.tenant_schema_versions where tenant_id = :i"), {"i": tenant.id}
        ).scalar_one()
        assert version == tenant_head()
        db.session.remove()
    assert client.get(f"/{slug}/").status_code == 200  # the claimed schema is a working workspace
    run_jobs(app)  # the refill job queued after the sign-up
    with app.app_context():
        assert len(_pool(db)) == 2
        db.session.remove()


def test_a_failed_signup_puts_the_pooled_schema_back(app, client, empty_pool, monkeypatch):
    from saas import signup as signup_module
    from saas.extensions import db
    from saas.migrate import fill_schema_pool
    from saas.models import Tenant

    with app.app_context():
        fill_schema_pool(db.engine, 1)
        before = _pool(db)
        db.session.remove()

    def boom(*_a, **_k):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(signup_module.audit, "record", boom)
    slug = unique("poolfail")
    with pytest.raises(RuntimeError):
        client.form(
            "/signup",
            {
                "company": "Fail Co",
                "slug": slug,
                "name": "Pat",
                "email": f"{slug}@example.com",
                "password": PASSWORD,
            },
        )
    with app.app_context():
        assert _pool(db) == before
        assert db.session.query(Tenant).filter_by(slug=slug).first() is None
        assert _schema_exists(db, before[0][1])  # still there, still pooled, still empty
        db.session.remove()


def test_stale_pooled_schemas_are_dropped_and_never_claimed(app, empty_pool):
    from saas.extensions import db
    from saas.migrate import claim_pooled_schema, discard_stale_pool, fill_schema_pool

    with app.app_context():
        fill_schema_pool(db.engine, 1)
        [(tenant_id, schema, _rev)] = _pool(db)
        db.session.execute(
            text("update public.schema_pool set revision = 'old' where tenant_id = :i"), {"i": tenant_id}
        )
        db.session.commit()
        with db.engine.begin() as conn:
            assert claim_pooled_schema(conn) is None  # not at head: sign-up builds its own schema instead
            conn.rollback()
        assert discard_stale_pool(db.engine) == 1
        assert _pool(db) == []
        assert not _schema_exists(db, schema)
        db.session.remove()
