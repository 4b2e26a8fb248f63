"""`crm backup <slug>`, `crm restore <backup id> (--new-schema | --over [--yes])`, `crm backups ...`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


def _tenant(slug: str):  # noqa: ANN202
    from sqlalchemy import select

    from saas.extensions import db
    from saas.models import Tenant

    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.status != "deleted"))
    if tenant is None:
        raise click.ClickException(f"no workspace {slug!r}")
    return tenant


def _operator() -> None:
    from saas import audit

    audit.set_actor(audit.Actor(email="operator:cli"))


@click.command("backup")
@click.argument("slug")
@click.option("--queue", "queued", is_flag=True, help="Hand it to a worker instead of running it here.")
@with_appcontext
def backup(slug: str, queued: bool) -> None:
    """Back up one workspace now (dump, store, prove by a test restore)."""
    from saas import tenancy
    from saas.backups import services

    _operator()
    tenant = _tenant(slug)
    row = services.request_backup(tenant.id, "manual")
    if queued:
        services.enqueue_backup(row)
        click.echo(f"backup {row.id} of {slug} queued")
        return
    with tenancy.bound(tenant.id, tenant.schema_name, tenant.slug):
        try:
            row = services.run_backup(row.id)
        except Exception as exc:
            raise click.ClickException(f"backup {row.id} failed: {exc}") from exc
    click.echo(
        f"backup {row.id} of {slug}: {row.status}, {row.size_bytes:,} bytes, "
        f"{sum(t['rows'] for t in row.manifest['tables'].values()):,} rows, {row.manifest['files']} files, "
        f"verified {row.verified_at:%Y-%m-%d %H:%M:%S} UTC"
    )


@click.command("restore")
@click.argument("backup_id", type=int)
@click.option(
    "--new-schema", "new_schema", is_flag=True, help="Restore beside the workspace, into restored_<id>."
)
@click.option("--over", is_flag=True, help="Replace the workspace's data with the backup (old schema kept).")
@click.option("--yes", is_flag=True, help="With --over: do not ask for confirmation.")
@with_appcontext
def restore(backup_id: int, new_schema: bool, over: bool, yes: bool) -> None:
    """Restore a good backup: into a new schema, or over its workspace after confirmation."""
    from saas.backups import services
    from saas.backups.archive import BackupRefused
    from saas.extensions import db
    from saas.models import Tenant

    if new_schema == over:
        raise click.UsageError("choose one: --new-schema or --over")
    _operator()
    try:
        backup = services.good_backup(backup_id)
        tenant = db.session.get(Tenant, backup.tenant_id)
        if over:
            if not yes:
                click.echo(
                    f"This replaces ALL data of workspace {tenant.slug} (id {tenant.id}) with backup {backup.id} "
                    f"of {backup.started_at:%Y-%m-%d %H:%M} UTC. The current data is kept in a schema of its own."
                )
                typed = click.prompt("Type the workspace's slug to go on", default="", show_default=False)
                if typed != tenant.slug:
                    raise click.ClickException("not confirmed: nothing was changed")
            result = services.restore_over(backup.id, tenant.id)
            click.echo(
                f"restored backup {backup.id} over {tenant.slug} ({sum(result.rows.values()):,} rows, "
                f"{result.files_put} files put back); the previous data is in schema {result.replaced}: "
                f"once satisfied, drop it with `crm backups drop-schema {result.replaced}`"
            )
        else:
            result = services.restore_new_schema(backup.id)
            click.echo(
                f"restored backup {backup.id} of {tenant.slug} into schema {result.schema} "
                f"({sum(result.rows.values()):,} rows, {result.files_put} files put back); "
                f"drop it with `crm backups drop-schema {result.schema}`"
            )
    except BackupRefused as err:
        raise click.ClickException(str(err)) from err


@click.group("backups", help="Tenant backups: list, retention, schemas left by restores.")
def backups_group() -> None:
    pass


@backups_group.command("list")
@click.argument("slug")
@with_appcontext
def backups_list(slug: str) -> None:
    """A workspace's backups, newest first (only "good" ones can be restored)."""
    from saas.backups import services

    tenant = _tenant(slug)
    click.echo("id\tstarted (UTC)\tkind\tstatus\tbytes\tverified (UTC)\tattempts\terror")
    for b in services.list_backups(tenant.id, limit=1000):
        started = f"{b.started_at:%Y-%m-%d %H:%M}" if b.started_at else "-"
        verified = f"{b.verified_at:%Y-%m-%d %H:%M}" if b.verified_at else "-"
        error = (b.error or "").splitlines()[0][:80] if b.error else ""
        click.echo(
            f"{b.id}\t{started}\t{b.kind}\t{b.status}\t{b.size_bytes or '-'}\t{verified}\t{b.attempts}\t{error}"
        )


@backups_group.command("prune")
@with_appcontext
def backups_prune() -> None:
    """Apply the retention policy now (the worker does it daily)."""
    from workers.backups import prune_backups

    click.echo(f"{prune_backups()} backups deleted")


@backups_group.command("schemas")
@with_appcontext
def backups_schemas() -> None:
    """Schemas left by restores (restored_<id>, replaced_<tenant>_<time>)."""
    from saas.backups import services

    for name in services.work_schemas():
        click.echo(name)


@backups_group.command("drop-schema")
@click.argument("name")
@with_appcontext
def backups_drop_schema(name: str) -> None:
    """Drop a schema a restore left behind."""
    from saas.backups import services
    from saas.backups.archive import BackupRefused

    try:
        services.drop_work_schema(name)
    except BackupRefused as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"dropped schema {name}")
