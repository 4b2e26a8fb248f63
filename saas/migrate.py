"""Migrations on two Alembic tracks: the shared schema, then every tenant schema.

Tenants are upgraded in parallel batches, each in one transaction with a lock
timeout, so a failure leaves that tenant exactly at its old revision and a
rerun resumes. ``public.tenant_schema_versions`` records each tenant's
revision, so tenants already at head cost one registry query in all.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

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


def tenant_head() -> str:
    head = script_dir(TENANT_DIR).get_current_head()
    assert head is not None, "the tenant track has no revisions"
    return head


def _run(conn: Connection, track_dir: Path, version_schema: str, destination: str = "heads") -> None:
    """Run a track's migrations on conn, inside the caller's transaction."""
    script = script_dir(track_dir)
    cfg = alembic_config(track_dir)

    def upgrade(rev, _context):  # noqa: ANN001 - alembic's callback signature
        return script._upgrade_revs(destination, rev)

    with EnvironmentContext(cfg, script, fn=upgrade, destination_rev=destination) as env:
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


def upgrade_tenant(engine: Engine, tenant_id: int, schema: str, lock_timeout: str = "5s") -> None:
    """Upgrade one tenant in a single transaction: all of it lands, or none of it."""
    if not SCHEMA_RE.match(schema):
        raise ValueError(f"bad schema name in registry: {schema!r}")
    token = _schema.set(schema)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(schema_translate_map={PLACEHOLDER: schema})
            with conn.begin():
                conn.execute(text("select set_config('lock_timeout', :t, true)"), {"t": lock_timeout})
                _run(conn, TENANT_DIR, schema)
                head = tenant_head()
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
) -> TenantResult:
    """Bring every tenant (or only these) to head, in parallel batches."""
    started = time.perf_counter()
    head = tenant_head()
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
            upgrade_tenant(engine, tenant_id, schema, lock_timeout)
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

    Runs in the caller's transaction, so a failed signup leaves no schema behind.
    """
    from saas.extensions import db

    if not SCHEMA_RE.match(schema):
        raise ValueError(f"bad schema name: {schema!r}")
    import_tenant_models()
    conn.execute(text(f'create schema "{schema}"'))
    mapped = conn.execution_options(schema_translate_map={PLACEHOLDER: schema})
    tables = [t for t in db.metadata.sorted_tables if t.schema == PLACEHOLDER]
    db.metadata.create_all(mapped, tables=tables, checkfirst=False)
    head = tenant_head()
    conn.execute(
        text(f'create table "{schema}".alembic_version (version_num varchar(32) not null primary key)')
    )
    conn.execute(text(f'insert into "{schema}".alembic_version values (:h)'), {"h": head})
    conn.execute(
        text(
            "insert into public.tenant_schema_versions (tenant_id, revision, updated_at) values (:id, :h, now())"
        ),
        {"id": tenant_id, "h": head},
    )


def import_tenant_models() -> None:
    """Import every module's models so the metadata holds all tenant tables."""
    import tenants.admin.models  # noqa: F401
    import tenants.registry  # noqa: F401
