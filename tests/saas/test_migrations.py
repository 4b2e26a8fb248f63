"""The migration runner on real PostgreSQL: new tenants at head without replaying history, models and
migrations that agree, a failure in the middle of many tenants that leaves nothing half-done, a clean
resume, and a no-op run when every tenant is at head.

The failure tests run in a database of their own, so "every tenant" means exactly the tenants they make.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine, make_url

from saas import migrate
from saas.migrate import TENANT_DIR, create_tenant_schema, tenant_head, upgrade_shared, upgrade_tenants
from tests.factories import PASSWORD, unique

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
EXTRA_REV = "f00dfacec0de"


# --- helpers -------------------------------------------------------------------------------------


def _scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def alembic_revision(engine: Engine, schema: str) -> str | None:
    assert re.fullmatch(r"t_\d+", schema)
    return _scalar(engine, f'select version_num from "{schema}".alembic_version')


def registry_revision(engine: Engine, tenant_id: int) -> tuple[str | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            text("select revision, last_error from public.tenant_schema_versions where tenant_id = :id"),
            {"id": tenant_id},
        ).one()
    return row[0], row[1]


def has_column(engine: Engine, schema: str, table: str, column: str) -> bool:
    return bool(
        _scalar(
            engine,
            "select count(*) from information_schema.columns "
            "where table_schema = :s and table_name = :t and column_name = :c",
            s=schema,
            t=table,
            c=column,
        )
    )


def has_index(engine: Engine, schema: str, name: str) -> bool:
    return bool(
        _scalar(
            engine,
            "select count(*) from pg_indexes where schemaname = :s and indexname = :n",
            s=schema,
            n=name,
        )
    )


def schema_shape(engine: Engine, schema: str) -> dict[str, list[tuple]]:
    """Everything that makes up a schema's shape, with the schema's own name taken out."""
    with engine.connect() as conn:

        def rows(sql: str) -> list[tuple]:
            return sorted(tuple(r) for r in conn.execute(text(sql), {"s": schema}))

        shape = {
            "tables": rows(
                "select table_name, table_type from information_schema.tables where table_schema = :s"
            ),
            "columns": rows(
                "select table_name, column_name, ordinal_position, data_type, udt_name, character_maximum_length, "
                "numeric_precision, numeric_scale, is_nullable, coalesce(column_default, ''), is_identity, "
                "coalesce(identity_generation, ''), collation_name from information_schema.columns "
                "where table_schema = :s"
            ),
            "indexes": rows(
                "select tablename, indexname, replace(indexdef, :s || '.', 'SCHEMA.') "
                "from pg_indexes where schemaname = :s"
            ),
            "constraints": rows(
                "select cl.relname, c.conname, c.contype, pg_get_constraintdef(c.oid) "
                "from pg_constraint c join pg_class cl on cl.oid = c.conrelid "
                "join pg_namespace n on n.oid = c.connamespace where n.nspname = :s"
            ),
            "sequences": rows(
                "select sequence_name, data_type, start_value, increment "
                "from information_schema.sequences where sequence_schema = :s"
            ),
        }
    # Identity sequences are named after their table, never after the schema; keep defaults schema-free too.
    shape["columns"] = [tuple(str(v).replace(f"{schema}.", "SCHEMA.") for v in r) for r in shape["columns"]]
    shape["constraints"] = [
        tuple(str(v).replace(f"{schema}.", "SCHEMA.") for v in r) for r in shape["constraints"]
    ]
    return shape


def write_extra_revision(track: Path, down_revision: str, body: str, rev: str = EXTRA_REV) -> None:
    (track / "versions" / f"{rev}_test_only.py").write_text(
        f'''"""test-only revision

Revision ID: {rev}
Revises: {down_revision}
"""

import sqlalchemy as sa
from alembic import op

from saas.migrate import tenant_schema

revision = "{rev}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    raise NotImplementedError
'''
    )


ROLES_NOTE = """\
    op.add_column("roles", sa.Column("note", sa.String(200), nullable=True), schema=tenant_schema())
    op.create_index("ix_roles_note", "roles", ["note"], schema=tenant_schema())"""


@pytest.fixture
def extra_track(tmp_path: Path) -> Path:
    """A copy of the tenant track plus one test-only revision: a column with an index on roles."""
    track = tmp_path / "tenant"
    shutil.copytree(TENANT_DIR, track, ignore=shutil.ignore_patterns("__pycache__"))
    write_extra_revision(track, tenant_head(), ROLES_NOTE)
    return track


@pytest.fixture
def own_db(app) -> Engine:
    """A database of this test's own, with the shared schema at head."""
    base = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    name = f"crm_test_{WORKER}_migrations"
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    engine = create_engine(base.set(database=name), pool_size=8, max_overflow=4)
    upgrade_shared(engine)
    yield engine
    engine.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def make_tenants(engine: Engine, count: int) -> list[tuple[int, str]]:
    """Registry rows and schemas at head, as provisioning makes them (without owners: not needed here)."""
    from saas.models import Tenant

    made = []
    for _ in range(count):
        with engine.begin() as conn:
            tenant_id = conn.execute(
                text("select nextval(pg_get_serial_sequence('public.tenants', 'id'))")
            ).scalar()
            schema = f"t_{tenant_id}"
            slug = unique("mig")
            conn.execute(insert(Tenant).values(id=tenant_id, slug=slug, name=slug, schema_name=schema))
            create_tenant_schema(conn, tenant_id, schema)
        made.append((tenant_id, schema))
    return made


# --- new tenants ---------------------------------------------------------------------------------


def test_signup_creates_schema_at_head_without_replaying_history(client, app, monkeypatch):
    def no_replay(*_args, **_kwargs):
        raise AssertionError("sign-up replayed the migration history")

    monkeypatch.setattr(migrate, "_run", no_replay)
    slug = unique("head")
    resp = client.form(
        "/signup",
        {
            "company": "Head Co",
            "slug": slug,
            "name": "Hana",
            "email": f"{slug}@example.com",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    with app.app_context():
        from saas.extensions import db

        tenant_id, schema = db.session.execute(
            text("select id, schema_name from public.tenants where slug = :s"), {"s": slug}
        ).one()
        db.session.remove()
        head = tenant_head()
        assert alembic_revision(db.engine, schema) == head
        assert registry_revision(db.engine, tenant_id) == (head, None)
        # ... and so the runner has nothing to do for it.
        assert all(tid != tenant_id for tid, _ in migrate.pending_tenants(db.engine, head))


def test_schema_from_metadata_equals_schema_from_migrations(factory, app):
    """Models and the tenant track must not drift apart: sign-up builds from models, upgrades from history."""
    made = factory.tenant()
    with app.app_context():
        from saas.extensions import db
        from saas.models import Tenant

        engine = db.engine
        # A registered tenant whose schema is empty: the runner replays the whole track onto it.
        with engine.begin() as conn:
            tenant_id = conn.execute(
                text("select nextval(pg_get_serial_sequence('public.tenants', 'id'))")
            ).scalar()
            replayed = f"t_{tenant_id}"
            slug = unique("replay")
            conn.execute(insert(Tenant).values(id=tenant_id, slug=slug, name=slug, schema_name=replayed))
            conn.execute(text(f'create schema "{replayed}"'))
        result = upgrade_tenants(engine, only=[tenant_id])
        assert result.upgraded == [tenant_id] and not result.failed

        from_models = schema_shape(engine, made.schema)
        from_history = schema_shape(engine, replayed)
        assert from_models["tables"], "the signed-up schema has no tables"
        for part in from_models:
            assert from_models[part] == from_history[part], f"{part} differ between models and migrations"
        assert alembic_revision(engine, made.schema) == alembic_revision(engine, replayed) == tenant_head()


def test_tenant_head_follows_the_track_it_is_given(extra_track):
    assert tenant_head() != EXTRA_REV
    assert tenant_head(extra_track) == EXTRA_REV
    assert tenant_head(TENANT_DIR) == tenant_head()


# --- failure in the middle, then resume --------------------------------------------------------


class HeldLock:
    """Another connection holding a lock on a tenant table until released (a long report, say)."""

    def __init__(self, engine: Engine, schema: str) -> None:
        self.conn = engine.connect()
        self.trans = self.conn.begin()
        self.conn.execute(text(f'lock table "{schema}".roles in access share mode'))

    def release(self) -> None:
        self.trans.rollback()
        self.conn.close()


def conflicting_object(engine: Engine, schema: str):
    """A relation already named like the new index: the column lands first, then the index fails."""
    with engine.begin() as conn:
        conn.execute(text(f'create table "{schema}".ix_roles_note (id int)'))

    def remove() -> None:
        with engine.begin() as conn:
            conn.execute(text(f'drop table "{schema}".ix_roles_note'))

    return remove


@pytest.mark.parametrize("cause", ["conflicting-object", "lock-held"])
def test_failure_in_the_middle_then_resume(own_db, extra_track, cause):
    engine = own_db
    old_head = tenant_head()
    tenants = make_tenants(engine, 6)
    victim_id, victim_schema = tenants[3]
    if cause == "conflicting-object":
        remove_cause = conflicting_object(engine, victim_schema)
        expected_error = "already exists"
    else:
        remove_cause = HeldLock(engine, victim_schema).release
        expected_error = "lock timeout"

    # Three batches of two, two at a time: the failure sits in the middle batch and the last still runs.
    result = upgrade_tenants(engine, workers=2, batch=2, lock_timeout="300ms", track_dir=extra_track)

    others = [t for t in tenants if t[0] != victim_id]
    assert set(result.failed) == {victim_id}, result.failed
    assert expected_error in result.failed[victim_id]
    assert sorted(result.upgraded) == sorted(t for t, _ in others)
    assert result.at_head == 0
    # The victim is exactly at its old revision, with nothing of the new one applied.
    assert alembic_revision(engine, victim_schema) == old_head
    revision, last_error = registry_revision(engine, victim_id)
    assert revision == old_head and expected_error in last_error
    assert not has_column(engine, victim_schema, "roles", "note")
    assert not has_index(engine, victim_schema, "ix_roles_note")
    for tenant_id, schema in others:
        assert alembic_revision(engine, schema) == EXTRA_REV
        assert registry_revision(engine, tenant_id) == (EXTRA_REV, None)
        assert has_column(engine, schema, "roles", "note")
        assert has_index(engine, schema, "ix_roles_note")

    # Remove the cause and rerun: only the victim is upgraded.
    remove_cause()
    rerun = upgrade_tenants(engine, workers=2, batch=2, lock_timeout="300ms", track_dir=extra_track)
    assert rerun.upgraded == [victim_id] and not rerun.failed
    assert rerun.at_head == 5
    assert alembic_revision(engine, victim_schema) == EXTRA_REV
    assert registry_revision(engine, victim_id) == (EXTRA_REV, None)
    assert has_column(engine, victim_schema, "roles", "note")
    assert has_index(engine, victim_schema, "ix_roles_note")

    # Everyone at head: a run that does nothing and touches no row.
    before = _versions(engine)
    noop = upgrade_tenants(engine, workers=2, batch=2, track_dir=extra_track)
    assert noop.upgraded == [] and not noop.failed and noop.at_head == 6
    assert _versions(engine) == before


def _versions(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "select tenant_id, revision, updated_at, last_error from public.tenant_schema_versions order by 1"
                )
            )
        ]


def test_lock_is_waited_for_when_released_within_the_timeout(own_db, extra_track):
    """lock_timeout bounds the wait; a lock let go in time is simply waited out."""
    engine = own_db
    (tenant_id, schema), *_ = make_tenants(engine, 2)
    lock = HeldLock(engine, schema)
    timer = threading.Timer(0.3, lock.release)
    timer.start()
    try:
        result = upgrade_tenants(engine, workers=2, lock_timeout="5s", track_dir=extra_track)
    finally:
        timer.join()
    assert not result.failed and len(result.upgraded) == 2
    assert has_column(engine, schema, "roles", "note")


def test_no_op_run_upgrades_nothing(own_db):
    engine = own_db
    make_tenants(engine, 3)
    before = _versions(engine)
    result = upgrade_tenants(engine)
    assert result.upgraded == [] and not result.failed and result.at_head == 3
    assert _versions(engine) == before


def test_a_tenant_with_no_version_row_is_brought_to_head(own_db):
    """A tenant the registry knows but whose schema was never built (e.g. restored from an old dump)."""
    from saas.models import Tenant

    engine = own_db
    with engine.begin() as conn:
        tenant_id = conn.execute(
            text("select nextval(pg_get_serial_sequence('public.tenants', 'id'))")
        ).scalar()
        schema = f"t_{tenant_id}"
        conn.execute(
            insert(Tenant).values(id=tenant_id, slug=unique("bare"), name="Bare", schema_name=schema)
        )
        conn.execute(text(f'create schema "{schema}"'))
    result = upgrade_tenants(engine)
    assert result.upgraded == [tenant_id]
    assert alembic_revision(engine, schema) == tenant_head()
    assert registry_revision(engine, tenant_id) == (tenant_head(), None)


SLOW_TWO_STEPS = """\
    op.add_column("roles", sa.Column("note", sa.String(200), nullable=True), schema=tenant_schema())
    op.execute("select pg_sleep(0.03)")  # widen the window in which another worker could interleave
    op.create_index("ix_roles_note", "roles", ["note"], schema=tenant_schema())"""


def test_parallel_workers_each_migrate_their_own_tenant(own_db, tmp_path):
    """Alembic's `op` is a process global: workers must never send one tenant's DDL down another's connection."""
    engine = own_db
    track = tmp_path / "tenant"
    shutil.copytree(TENANT_DIR, track, ignore=shutil.ignore_patterns("__pycache__"))
    write_extra_revision(track, tenant_head(), SLOW_TWO_STEPS)
    tenants = make_tenants(engine, 8)
    result = upgrade_tenants(engine, workers=8, batch=8, track_dir=track)
    assert not result.failed, result.failed
    assert sorted(result.upgraded) == sorted(t for t, _ in tenants)
    for tenant_id, schema in tenants:
        assert has_column(engine, schema, "roles", "note")
        assert has_index(engine, schema, "ix_roles_note")
        assert alembic_revision(engine, schema) == EXTRA_REV
        assert registry_revision(engine, tenant_id) == (EXTRA_REV, None)
