"""Migrations on two Alembic tracks: the shared schema, then every tenant schema.

Tenants are upgraded in parallel batches, each in one transaction with a lock
timeout, so a failure leaves that tenant exactly at its old revision and a
rerun resumes. ``public.tenant_schema_versions`` records each tenant's
revision, so tenants already at head cost one registry query in all.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Dialect, Engine, MetaData, create_mock_engine, text

from saas.tenancy import PLACEHOLDER, SCHEMA_RE

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent / "migrations"
SHARED_DIR = HERE / "shared"
TENANT_DIR = HERE / "tenant"

_schema: contextvars.ContextVar[str | None] = contextvars.ContextVar("migration_schema", default=None)


def tenant_schema() -> str:
    """The real schema a tenant-track migration is running on (for ops that take schema=)."""
    schema = _schema.get()
    if schema is None:
        raise RuntimeError("tenant_schema() outside a tenant migration")
    return schema


def alembic_config(track_dir: Path) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(track_dir))
    return cfg


_scripts: dict[Path, ScriptDirectory] = {}


def script_dir(track_dir: Path) -> ScriptDirectory:
    if track_dir not in _scripts:
        _scripts[track_dir] = ScriptDirectory.from_config(alembic_config(track_dir))
    return _scripts[track_dir]


def tenant_head(track_dir: Path = TENANT_DIR) -> str:
    head = script_dir(track_dir).get_current_head()
    assert head is not None, "the tenant track has no revisions"
    return head


# Alembic keeps the running `op` and `context` in module globals, shared by every thread: two tenants
# migrating at once in threads would send one tenant's DDL down the other's connection (and race on
# removing the proxies). So one thread at a time runs Alembic; connecting, lock_timeout and the
# commit of each tenant's transaction still overlap.
_alembic_lock = threading.Lock()


def _run(conn: Connection, track_dir: Path, version_schema: str, destination: str = "heads") -> None:
    """Run a track's migrations on conn, inside the caller's transaction."""
    script = script_dir(track_dir)
    cfg = alembic_config(track_dir)

    def upgrade(rev, _context):  # noqa: ANN001 - alembic's callback signature
        return script._upgrade_revs(destination, rev)

    with _alembic_lock, EnvironmentContext(cfg, script, fn=upgrade, destination_rev=destination) as env:
        env.configure(
            connection=conn,
            version_table="alembic_version",
            version_table_schema=version_schema,
            transactional_ddl=True,
            transaction_per_migration=False,
        )
        env.run_migrations()


def upgrade_shared(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("select pg_advisory_xact_lock(7431001)"))  # one upgrader at a time
        _run(conn, SHARED_DIR, "public")


@dataclass
class TenantResult:
    upgraded: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    at_head: int = 0
    seconds: float = 0.0


def pending_tenants(engine: Engine, head: str, only: Iterable[int] | None = None) -> list[tuple[int, str]]:
    sql = (
        "select t.id, t.schema_name from public.tenants t "
        "left join public.tenant_schema_versions v on v.tenant_id = t.id "
        "where t.status <> 'deleted' and v.revision is distinct from :head"
    )
    params: dict = {"head": head}
    if only is not None:
        sql += " and t.id = any(:ids)"
        params["ids"] = list(only)
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(text(sql + " order by t.id"), params)]


def upgrade_tenant(
    engine: Engine, tenant_id: int, schema: str, lock_timeout: str = "5s", track_dir: Path = TENANT_DIR
) -> None:
    """Upgrade one tenant in a single transaction: all of it lands, or none of it.

    track_dir is the tenant track's script directory (another one only in tests and benchmarks).
    """
    if not SCHEMA_RE.match(schema):
        raise ValueError(f"bad schema name in registry: {schema!r}")
    token = _schema.set(schema)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(schema_translate_map={PLACEHOLDER: schema})
            with conn.begin():
                conn.execute(text("select set_config('lock_timeout', :t, true)"), {"t": lock_timeout})
                _run(conn, track_dir, schema)
                head = tenant_head(track_dir)
                conn.execute(
                    text(
                        "insert into public.tenant_schema_versions (tenant_id, revision, updated_at, last_error) "
                        "values (:id, :rev, now(), null) on conflict (tenant_id) do update "
                        "set revision = excluded.revision, updated_at = now(), last_error = null"
                    ),
                    {"id": tenant_id, "rev": head},
                )
    finally:
        _schema.reset(token)


def _record_failure(engine: Engine, tenant_id: int, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into public.tenant_schema_versions (tenant_id, revision, updated_at, last_error) "
                "values (:id, null, now(), :err) on conflict (tenant_id) do update "
                "set last_error = excluded.last_error, updated_at = now()"
            ),
            {"id": tenant_id, "err": error[:2000]},
        )


def upgrade_tenants(
    engine: Engine,
    workers: int = 4,
    batch: int = 50,
    lock_timeout: str = "5s",
    only: Iterable[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    track_dir: Path = TENANT_DIR,
) -> TenantResult:
    """Bring every tenant (or only these) to head, in parallel batches."""
    started = time.perf_counter()
    head = tenant_head(track_dir)
    todo = pending_tenants(engine, head, only)
    result = TenantResult()
    with engine.connect() as conn:
        total = conn.execute(
            text("select count(*) from public.tenants where status <> 'deleted'")
        ).scalar_one()
    result.at_head = total - len(todo)

    def one(item: tuple[int, str]) -> tuple[int, str | None]:
        tenant_id, schema = item
        try:
            upgrade_tenant(engine, tenant_id, schema, lock_timeout, track_dir)
            return tenant_id, None
        except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the others
            log.exception("tenant %s failed to migrate", tenant_id)
            _record_failure(engine, tenant_id, f"{type(exc).__name__}: {exc}")
            return tenant_id, f"{type(exc).__name__}: {exc}"

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(todo), batch):
            for tenant_id, error in pool.map(one, todo[start : start + batch]):
                if error is None:
                    result.upgraded.append(tenant_id)
                else:
                    result.failed[tenant_id] = error
                done += 1
            if progress:
                progress(done, len(todo))
    result.seconds = time.perf_counter() - started
    return result


def create_tenant_schema(conn: Connection, tenant_id: int, schema: str) -> None:
    """Create a new tenant's schema at head from metadata and stamp it: no history replayed.

    Runs in the caller's transaction, so a failed signup leaves no schema behind. The DDL is compiled
    once (see tenant_ddl) and the whole schema, its alembic_version stamp and the registry's revision
    row go to the server as one script: one round trip.
    """
    head = tenant_head()
    conn.exec_driver_sql(
        _schema_script(conn, schema, head) + ";\n"
        "insert into public.tenant_schema_versions (tenant_id, revision, updated_at) "
        f"values ({int(tenant_id)}, '{head}', now())"
    )


def _schema_script(conn: Connection, schema: str, head: str) -> str:
    if not SCHEMA_RE.match(schema):
        raise ValueError(f"bad schema name: {schema!r}")
    if not re.fullmatch(r"\w+", head):
        raise ValueError(f"odd revision id: {head!r}")
    script = tenant_ddl(conn.dialect).replace(f'"{_SENTINEL}"', f'"{schema}"')
    return (
        f'create schema "{schema}";\n{script};\n'
        # The version table exactly as Alembic makes it (same primary key name), so both paths agree.
        f'create table "{schema}".alembic_version (version_num varchar(32) not null, '
        "constraint alembic_version_pkc primary key (version_num));\n"
        f"insert into \"{schema}\".alembic_version (version_num) values ('{head}')"
    )


# The schema pool: sign-up claims a schema made ahead of time instead of running the DDL itself.


def fill_schema_pool(engine: Engine, size: int) -> int:
    """Top the pool up to `size` schemas at head (one transaction each); returns how many were made."""
    head = tenant_head()
    made = 0
    with engine.connect() as lock:
        # One filler at a time, or two jobs would both see the pool short and overfill it.
        if not lock.execute(text("select pg_try_advisory_lock(7431002)")).scalar_one():
            return 0
        try:
            have = lock.execute(
                text("select count(*) from public.schema_pool where revision = :h"), {"h": head}
            ).scalar_one()
            lock.commit()
            made = _fill(engine, head, max(0, size - have))
        finally:
            lock.execute(text("select pg_advisory_unlock(7431002)"))
            lock.commit()
    return made


def _fill(engine: Engine, head: str, count: int) -> int:
    made = 0
    for _ in range(count):
        with engine.begin() as conn:
            tenant_id = conn.execute(
                text("select nextval(pg_get_serial_sequence('public.tenants', 'id'))")
            ).scalar_one()
            schema = f"t_{tenant_id}"
            conn.exec_driver_sql(_schema_script(conn, schema, head))
            conn.execute(
                text(
                    "insert into public.schema_pool (tenant_id, schema_name, revision, created_at) values (:i, :s, :h, now())"
                ),
                {"i": tenant_id, "s": schema, "h": head},
            )
        made += 1
    return made


def claim_pooled_schema(conn: Connection) -> tuple[int, str] | None:
    """Take one pooled schema at head in the caller's transaction (a rollback puts it back), or None."""
    head = tenant_head()
    row = conn.execute(
        text(
            "delete from public.schema_pool where tenant_id = (select tenant_id from public.schema_pool "
            "where revision = :h order by tenant_id limit 1 for update skip locked) returning tenant_id, schema_name"
        ),
        {"h": head},
    ).first()
    if row is None:
        return None
    tenant_id, schema = int(row[0]), str(row[1])
    if schema != f"t_{tenant_id}" or not SCHEMA_RE.match(schema):
        raise ValueError(f"bad pooled schema: {schema!r}")
    return tenant_id, schema


def record_pooled_version(conn: Connection, tenant_id: int) -> None:
    """The registry's revision row for a claimed schema (once its tenants row exists)."""
    conn.execute(
        text(
            "insert into public.tenant_schema_versions (tenant_id, revision, updated_at) values (:i, :h, now())"
        ),
        {"i": tenant_id, "h": tenant_head()},
    )


def discard_stale_pool(engine: Engine) -> int:
    """Drop pooled schemas not at head (after a tenant-track upgrade); the pool refills at head."""
    head = tenant_head()
    dropped = 0
    with engine.begin() as conn:
        rows = conn.execute(
            text("delete from public.schema_pool where revision <> :h returning schema_name"), {"h": head}
        ).scalars()
        for schema in rows:
            if SCHEMA_RE.match(schema):
                conn.exec_driver_sql(f'drop schema if exists "{schema}" cascade')
                dropped += 1
    return dropped


_SENTINEL = "TENANT_SCHEMA_SENTINEL"  # upper case: always rendered quoted, so it is replaced safely
_ddl_cache: dict[tuple, str] = {}


def tenant_ddl(dialect: Dialect) -> str:
    """Every tenant table's CREATE statements (types, tables, indexes) as one script, schema = _SENTINEL.

    Compiled once per set of tenant tables from the models' metadata, exactly what create_all would
    emit; percent signs doubled for exec_driver_sql.
    """
    from saas.extensions import db

    import_tenant_models()
    key = (dialect.name, tuple(db.metadata.tables))
    if key not in _ddl_cache:
        target = MetaData(naming_convention=db.metadata.naming_convention)
        for table in db.metadata.sorted_tables:  # shared tables too, so foreign keys to them resolve
            table.to_metadata(target, schema=_SENTINEL if table.schema == PLACEHOLDER else table.schema)
        statements: list[str] = []
        mock = create_mock_engine(
            "postgresql+psycopg://",
            lambda ddl, *_a, **_k: statements.append(str(ddl.compile(dialect=dialect))),
        )
        mine = [t for t in target.sorted_tables if t.schema == _SENTINEL]
        target.create_all(mock, tables=mine, checkfirst=False)
        _ddl_cache[key] = ";\n".join(s.strip() for s in statements).replace("%", "%%")
    return _ddl_cache[key]


def import_tenant_models() -> None:
    """Import every module's models so the metadata holds all tenant tables."""
    import tenants.admin.models  # noqa: F401
    import tenants.registry  # noqa: F401
