"""Migrations with many tenants: a no-op `crm db upgrade`, and one that adds a column with an index.

Setup (not timed): a fresh database, the shared schema, N tenants provisioned directly through
saas.signup.provision (registry row, schema from metadata stamped at head, owner membership, audit
event), all owned by one person.

No-op: every tenant at head; the real `crm db upgrade` as a subprocess (interpreter start, app
creation, shared track, tenant registry check), and upgrade_shared + upgrade_tenants in-process.
Column: a temporary tenant-track revision (a copy of saas/migrations/tenant plus one file) that adds
a nullable column with an index to audit_log, applied to all N tenants by the real runner.
Floors: `crm --help` (the CLI's start-up alone), the registry query alone, and the same ALTER TABLE
+ CREATE INDEX as plain SQL in a loop over the schemas on one connection, no Alembic.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import ROOT, Context, log, machine, now_iso, row
from bench.signup import _Jobs

TITLE = "Migrations with many tenants"
TARGET_NOOP_S = 2.0
TARGET_COLUMN_S = 60.0
PASSWORD = "bench-Password-2024!"


def crm_executable() -> str:
    for candidate in (ROOT / ".venv" / "bin" / "crm", Path(sys.executable).parent / "crm"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("crm")
    if not found:
        raise RuntimeError("no `crm` command: install the project (make install)")
    return found


def provision_tenants(app: Any, count: int) -> float:
    """N tenants through saas.signup.provision, one transaction each; returns the seconds it took."""
    from saas import accounts
    from saas.extensions import db
    from saas.models import User
    from saas.signup import provision

    tag = uuid.uuid4().hex[:6]
    started = time.perf_counter()
    with app.test_request_context():
        owner = User(
            email=f"owner-{tag}@bench.example.com",
            name="Bench Owner",
            password_hash=accounts.hash_password(PASSWORD),
        )
        db.session.add(owner)
        db.session.commit()
        for i in range(count):
            provision(f"Bench Company {i}", f"m{tag}-{i}", owner)
            if (i + 1) % 20 == 0 or i + 1 == count:  # a few tenants per commit: setup only
                db.session.commit()
            if (i + 1) % 250 == 0:
                log(f"migrations: {i + 1}/{count} tenants provisioned")
        db.session.remove()
    return time.perf_counter() - started


def run_cli(ctx: Context, *args: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run `crm args...`; return its wall time, its CPU time (user + sys) and the finished process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([crm_executable(), *args], env=ctx.env(), capture_output=True, text=True, cwd=ROOT)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"crm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took, cpu, proc


def compile_bytecode() -> None:
    """Write the project's .pyc files, as an installed package has them (PYTHONDONTWRITEBYTECODE may be set)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "saas", "tenants", "workers"], cwd=ROOT, check=True
    )


def write_revision(track: Path, rev: str, down: str, column: str) -> None:
    (track / "versions" / f"{rev}_bench_{column}.py").write_text(
        f'''"""bench: {column} on audit_log

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

from saas.migrate import tenant_schema

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("{column}", sa.String(200), nullable=True), schema=tenant_schema())
    op.create_index("ix_audit_log_{column}", "audit_log", ["{column}"], schema=tenant_schema())


def downgrade() -> None:
    op.drop_index("ix_audit_log_{column}", table_name="audit_log", schema=tenant_schema())
    op.drop_column("audit_log", "{column}", schema=tenant_schema())
'''
    )


def sql_floor(url: str, schemas: list[str], column: str) -> float:
    """The same DDL as plain SQL, one transaction per schema, in a loop on one connection."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for schema in schemas:
            with conn.transaction():
                conn.execute(f'alter table "{schema}".audit_log add column {column} varchar(200)')
                conn.execute(f'create index ix_audit_log_{column} on "{schema}".audit_log ({column})')
    return time.perf_counter() - start


def count_applied(engine: Any, column: str) -> tuple[int, int]:
    from sqlalchemy import text

    with engine.connect() as conn:
        cols = conn.execute(
            text(
                "select count(*) from information_schema.columns "
                "where table_name = 'audit_log' and column_name = :c and table_schema like 't\\_%'"
            ),
            {"c": column},
        ).scalar()
        idx = conn.execute(
            text("select count(*) from pg_indexes where indexname = :i and schemaname like 't\\_%'"),
            {"i": f"ix_audit_log_{column}"},
        ).scalar()
    return cols, idx


def run(ctx: Context) -> dict[str, Any]:
    from sqlalchemy import text

    from saas.extensions import db
    from saas.migrate import TENANT_DIR, pending_tenants, tenant_head, upgrade_shared, upgrade_tenants

    count = 100 if ctx.quick else 1000
    repeat = 2 if ctx.quick else 5
    app = ctx.app()
    cfg = app.config
    workers, batch, lock_timeout = (
        cfg["MIGRATION_WORKERS"],
        cfg["MIGRATION_BATCH"],
        cfg["MIGRATION_LOCK_TIMEOUT"],
    )
    log(f"migrations: provisioning {count} tenants (setup, not timed)")
    jobs = _Jobs(app)  # jobs provisioning queues (e.g. a schema-pool refill) point at this scratch database
    try:
        setup_s = provision_tenants(app, count)
    finally:
        jobs.remove_new()
    log(f"migrations: {count} tenants in {setup_s:.1f}s")

    with app.app_context():
        engine = db.engine
        head = tenant_head()

        # --- no-op ------------------------------------------------------------------------------
        log("migrations: no-op upgrade, CLI and in-process")
        cli_runs, cli_cpu, help_runs, help_cpu = [], [], [], []
        compile_bytecode()
        run_cli(ctx, "db", "upgrade")  # warm the OS file cache like any second run
        for _ in range(repeat):
            took, cpu, proc = run_cli(ctx, "db", "upgrade")
            if f"0 upgraded, {count} already at head, 0 failed" not in proc.stdout:
                raise RuntimeError(f"the no-op upgrade did something: {proc.stdout}")
            cli_runs.append(took)
            cli_cpu.append(cpu)
            took, cpu, _proc = run_cli(ctx, "--help")
            help_runs.append(took)
            help_cpu.append(cpu)

        inproc, registry = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            upgrade_shared(engine)
            result = upgrade_tenants(engine, workers=workers, batch=batch, lock_timeout=lock_timeout)
            inproc.append(time.perf_counter() - start)
            if result.upgraded or result.failed or result.at_head != count:
                raise RuntimeError(f"the no-op upgrade did something: {result}")
            start = time.perf_counter()
            pending_tenants(engine, head)
            registry.append(time.perf_counter() - start)

        # --- a column with an index -------------------------------------------------------------
        with tempfile.TemporaryDirectory(prefix="crm-bench-track-") as tmp:
            track = Path(tmp) / "tenant"
            shutil.copytree(TENANT_DIR, track, ignore=shutil.ignore_patterns("__pycache__"))
            write_revision(track, "bench0000001", head, "bench_note")
            log(f"migrations: adding a column with an index to {count} tenants, {workers} workers")
            start = time.perf_counter()
            column = upgrade_tenants(
                engine, workers=workers, batch=batch, lock_timeout=lock_timeout, track_dir=track
            )
            column_s = time.perf_counter() - start
            if column.failed or len(column.upgraded) != count:
                raise RuntimeError(
                    f"column upgrade: {len(column.upgraded)} upgraded, failed: {column.failed}"
                )
            if count_applied(engine, "bench_note") != (count, count):
                raise RuntimeError("column upgrade: not every schema has the column and its index")

            # A second copy: the runner caches a track's scripts by folder.
            track = shutil.copytree(
                track, Path(tmp) / "tenant2", ignore=shutil.ignore_patterns("__pycache__")
            )
            write_revision(track, "bench0000002", "bench0000001", "bench_one")
            log("migrations: the same with 1 worker, for comparison")
            start = time.perf_counter()
            single = upgrade_tenants(
                engine, workers=1, batch=batch, lock_timeout=lock_timeout, track_dir=track
            )
            single_s = time.perf_counter() - start
            if single.failed or len(single.upgraded) != count:
                raise RuntimeError(f"1-worker upgrade: failed: {single.failed}")

        log("migrations: floor (plain SQL loop)")
        with engine.connect() as conn:
            schemas = [r[0] for r in conn.execute(text("select schema_name from public.tenants order by id"))]
        floor_s = sql_floor(cfg["SQLALCHEMY_DATABASE_URI"], schemas, "floor_note")
        if count_applied(engine, "floor_note") != (count, count):
            raise RuntimeError("floor: not every schema has the column and its index")

    med = statistics.median
    noop_rows = [
        row(
            f"`crm db upgrade`, no-op, {count} tenants (subprocess), median",
            med(cli_runs),
            "s",
            TARGET_NOOP_S,
            med(help_runs),
            "`crm --help`: CLI start-up",
        ),
        row(
            f"`crm db upgrade`, no-op, {count} tenants (subprocess), worst of {repeat}",
            max(cli_runs),
            "s",
            TARGET_NOOP_S,
            max(help_runs),
            "`crm --help`: CLI start-up",
        ),
        row(
            "… CPU time (user + sys) of that process, median",
            med(cli_cpu),
            "s",
            None,
            med(help_cpu),
            "`crm --help`: CLI start-up",
        ),
        row(
            "upgrade_shared + upgrade_tenants in-process, no-op, median",
            med(inproc) * 1000,
            "ms",
            TARGET_NOOP_S * 1000,
            med(registry) * 1000,
            "registry query alone",
        ),
        row(
            f"upgrade_shared + upgrade_tenants in-process, no-op, worst of {repeat}",
            max(inproc) * 1000,
            "ms",
            TARGET_NOOP_S * 1000,
            max(registry) * 1000,
            "registry query alone",
        ),
    ]
    column_rows = [
        row(
            f"Add column + index to audit_log, {count} tenants, {workers} workers",
            column_s,
            "s",
            TARGET_COLUMN_S,
            floor_s,
            "plain SQL loop",
        ),
        row(
            "… throughput",
            count / column_s,
            "tenants/s",
            count / TARGET_COLUMN_S,
            count / floor_s,
            "plain SQL loop",
            higher_is_better=True,
        ),
        row("… worker threads", workers, "", note="CRM_MIGRATION_WORKERS; batch of " + str(batch)),
        row(
            f"Same shape (another column + index), {count} tenants, 1 worker",
            single_s,
            "s",
            None,
            floor_s,
            "plain SQL loop",
        ),
        row("Floor: the same DDL as plain SQL in a loop, one connection", floor_s, "s"),
        row(f"Setup (not part of any figure): provision {count} tenants", setup_s, "s"),
    ]
    return {
        "title": TITLE,
        "module": "bench/migrations.py",
        "date": now_iso(),
        "quick": ctx.quick,
        "machine": machine(ctx),
        "params": {
            "tenants": count,
            "repeats": repeat,
            "workers": workers,
            "batch": batch,
            "lock_timeout": lock_timeout,
        },
        "tables": [
            {
                "title": f"No-op upgrade with {count} tenants at head",
                "rows": noop_rows,
                "notes": [
                    "Subprocess: wall time of `.venv/bin/crm db upgrade` (Python start, imports, app creation, "
                    "shared track, one registry query for pending tenants); one untimed run first, after "
                    "`compileall` of saas/, tenants/, workers/ (bytecode as an installed package has it). "
                    "Baseline: `crm --help`, which starts the same interpreter and app and does no database work. "
                    "CPU time is shown too: on a busy machine wall time grows with the load, CPU time much less.",
                    "In-process: upgrade_shared (advisory lock, shared track at head) then upgrade_tenants "
                    "(registry query: nothing pending). Baseline: that registry query alone.",
                ],
            },
            {
                "title": f"Adding a column with an index to a tenant table, {count} tenants",
                "rows": column_rows,
                "notes": [
                    "A temporary revision in a copy of the tenant track: `op.add_column` (nullable varchar) + "
                    "`op.create_index` on audit_log, run by upgrade_tenants: one transaction per tenant with "
                    f"lock_timeout {lock_timeout}, revision recorded in public.tenant_schema_versions, in batches "
                    f"of {batch}.",
                    "Alembic's `op`/`context` are process globals, so the runner lets one thread at a time run "
                    "Alembic; the workers overlap connecting, lock_timeout and each tenant's commit.",
                    "Floor: `ALTER TABLE … ADD COLUMN` + `CREATE INDEX` as plain SQL, one transaction per "
                    "schema, in a loop over the schemas on one psycopg connection; no Alembic, no registry.",
                ],
            },
        ],
    }
