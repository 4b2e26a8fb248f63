"""The `crm` command line: database, tenants, worker, demo data and the development server."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext


def link_context(app: Flask | None = None, default_base: str | None = None):  # noqa: ANN201
    """A request context outside any request, so links in emails (url_for(..., _external=True))
    point at BASE_URL (else default_base, else http://127.0.0.1:$PORT)."""
    app = app or current_app._get_current_object()
    base = app.config.get("BASE_URL") or default_base or f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"
    return app.test_request_context("/", base_url=base)


def register_cli(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(tenants_group)
    app.cli.add_command(worker)
    app.cli.add_command(demo)
    from saas.backups.cli import backup, backups_group, restore

    app.cli.add_command(backup)
    app.cli.add_command(restore)
    app.cli.add_command(backups_group)
    from saas.console.cli import platform_admin_group
    from saas.keys_cli import keys_group

    app.cli.add_command(keys_group)
    app.cli.add_command(platform_admin_group)


@click.group("db", help="Migrations: the shared schema, then every tenant.")
def db_group() -> None:
    pass


@db_group.command("upgrade")
@click.option("--workers", type=int, default=None, help="Tenants migrated at once.")
@click.option("--batch", type=int, default=None, help="Tenants per batch.")
@click.option("--tenant", "tenant_ids", type=int, multiple=True, help="Only these tenant ids.")
@with_appcontext
def db_upgrade(workers: int | None, batch: int | None, tenant_ids: tuple[int, ...]) -> None:
    """Upgrade the shared schema, then every tenant not yet at head."""
    from saas.extensions import db
    from saas.migrate import discard_stale_pool, upgrade_shared, upgrade_tenants

    cfg = current_app.config
    upgrade_shared(db.engine)
    result = upgrade_tenants(
        db.engine,
        workers=workers or cfg["MIGRATION_WORKERS"],
        batch=batch or cfg["MIGRATION_BATCH"],
        lock_timeout=cfg["MIGRATION_LOCK_TIMEOUT"],
        only=tenant_ids or None,
        progress=lambda done, total: click.echo(f"  tenants {done}/{total}", err=True),
    )
    stale = discard_stale_pool(db.engine)  # pooled schemas left behind by this upgrade; the job refills
    click.echo(
        f"shared schema at head; tenants: {len(result.upgraded)} upgraded, {result.at_head} already at head, "
        f"{len(result.failed)} failed ({result.seconds:.2f}s)"
        + (f"; {stale} stale pooled schemas dropped" if stale else "")
    )
    for tenant_id, error in result.failed.items():
        click.echo(f"  tenant {tenant_id} failed and stays at its old revision: {error}", err=True)
    if result.failed:
        sys.exit(1)


@db_group.command("status")
@with_appcontext
def db_status() -> None:
    """How many tenants sit at which tenant-track revision."""
    from sqlalchemy import text

    from saas.extensions import db
    from saas.migrate import tenant_head

    click.echo(f"tenant head: {tenant_head()}")
    rows = db.session.execute(
        text(
            "select coalesce(v.revision, '(none)'), count(*), count(v.last_error) from public.tenants t "
            "left join public.tenant_schema_versions v on v.tenant_id = t.id group by 1 order by 2 desc"
        )
    )
    for rev, count, errors in rows:
        click.echo(f"  {rev}: {count} tenants ({errors} with errors)")


@db_group.command("revision")
@click.option("--track", type=click.Choice(["shared", "tenant"]), required=True)
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True)
@with_appcontext
def db_revision(track: str, message: str, autogenerate: bool) -> None:
    """Write a new migration; the tenant track compares against a scratch tenant schema at head."""
    from alembic import command
    from sqlalchemy import text

    from saas.extensions import db
    from saas.migrate import SHARED_DIR, TENANT_DIR, _run, _schema, alembic_config
    from saas.tenancy import PLACEHOLDER

    cfg = alembic_config(SHARED_DIR if track == "shared" else TENANT_DIR)
    with db.engine.connect() as conn:
        trans = conn.begin()
        try:
            if track == "tenant":
                # A scratch tenant schema built by replaying the track, so the diff is models vs. history.
                conn.execute(text('create schema "t_0"'))
                mapped = conn.execution_options(schema_translate_map={PLACEHOLDER: "t_0"})
                token = _schema.set("t_0")
                try:
                    _run(mapped, TENANT_DIR, "t_0")
                finally:
                    _schema.reset(token)
                cfg.attributes["schema"] = "t_0"
            cfg.attributes["connection"] = conn
            script = command.revision(cfg, message=message, autogenerate=autogenerate)
        finally:
            trans.rollback()
    if track == "tenant" and script is not None:
        _use_tenant_schema(script.path)
    click.echo(f"wrote {script.path}")


def _use_tenant_schema(path: str) -> None:
    """Point a generated tenant migration at the schema being migrated, not the scratch one."""
    from pathlib import Path

    file = Path(path)
    code = file.read_text().replace("schema='t_0'", "schema=tenant_schema()")
    # Foreign keys name their target table with the scratch schema too: 't_0.companies.id'.
    code = code.replace("['t_0.", "[tenant_schema() + '.").replace("'t_0.", "tenant_schema() + '.")
    code = code.replace(
        "from alembic import op\n", "from alembic import op\n\nfrom saas.migrate import tenant_schema\n", 1
    )
    file.write_text(code)


@click.group("tenants", help="The tenant registry.")
def tenants_group() -> None:
    pass


@tenants_group.command("create")
@click.option("--name", required=True)
@click.option("--slug", required=True)
@click.option("--owner-email", required=True)
@click.option("--owner-name", default="Owner")
@click.option("--password", required=True)
@with_appcontext
def tenants_create(name: str, slug: str, owner_email: str, owner_name: str, password: str) -> None:
    """Create a workspace and its owner, as the sign-up page does."""
    from saas.accounts import AccountError
    from saas.signup import signup

    try:
        with link_context():
            tenant = signup(name, slug, owner_name, owner_email, password)
    except AccountError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"created {tenant.slug} (id {tenant.id}, schema {tenant.schema_name})")


@tenants_group.command("list")
@with_appcontext
def tenants_list() -> None:
    from sqlalchemy import select

    from saas.extensions import db
    from saas.models import Tenant

    for t in db.session.scalars(select(Tenant).order_by(Tenant.id)):
        click.echo(f"{t.id}\t{t.slug}\t{t.schema_name}\t{t.status}\t{t.name}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then stop.")
@with_appcontext
def worker(burst: bool) -> None:
    """An RQ worker on every queue, with RQ's scheduler for retries and periodic jobs."""
    from workers.runner import run_worker

    run_worker(burst=burst)


@click.command("demo")
@click.option("--slug", default="demo")
@with_appcontext
def demo(slug: str) -> None:
    """Create the demo workspace with sample people (prints its login)."""
    from saas.demo import create_demo

    with link_context():
        email, password, created = create_demo(slug)
    state = "created" if created else "already there"
    click.echo(f"demo workspace {state}: http://127.0.0.1:{os.environ.get('PORT', '5000')}/{slug}/")
    click.echo(f"  sign in as {email} / {password}")


def main() -> None:
    import gc

    # Start-up builds a large heap (modules, the app) that lives as long as the process. The cyclic
    # GC sweeping it over and over while it grows, and once more at exit, was a third of a no-op
    # `crm db upgrade` (see docs/PERFORMANCE.md): no collections while starting, then freeze it all
    # out of later ones. The GC is back on before any command runs.
    gc.disable()
    try:
        from saas import create_app
    finally:
        gc.enable()

    def make_app() -> Flask:
        gc.disable()
        try:
            app = create_app()
            gc.freeze()
        finally:
            gc.enable()
        return app

    cli = FlaskGroup(create_app=make_app, add_default_commands=True, help="The CRM's command line.")
    cli.add_command(_dev)
    cli.main(prog_name="crm")


@click.command("dev")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")))
def _dev(port: int) -> None:
    """Embedded PostgreSQL and Redis (unless configured), migrations, demo data, web and worker."""
    from saas.devserver import run

    run(port)


if __name__ == "__main__":  # `python -m saas.cli ...`, as the dev server starts the worker
    main()
