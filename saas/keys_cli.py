"""`crm keys`: make encryption keys, and re-encrypt every sensitive value under the newest one.

Rotation walks each tenant's records by id in batches, each batch its own short transaction (no
table locks, only the rows it rewrites, one at a time), so it runs while the app serves. A value
already under the primary key is left alone, so an interrupted run simply starts again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import click
from flask.cli import with_appcontext
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

RECORD_TYPES = ("company", "contact")
LOCK_TIMEOUT = "2s"
RETRIES = 3


@dataclass
class Rotated:
    records: int = 0
    values: int = 0
    unreadable: list[tuple[str, int]] = field(default_factory=list)  # (record type, id)


def rotate_tenant(
    tenant_id: int, schema: str, slug: str, batch: int = 1000, echo: Callable[[str], None] | None = None
) -> Rotated:
    """Re-encrypt the tenant's sensitive values not under the primary key (and fix stale blind indexes)."""
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers.fields import reseal_batch

    total = Rotated()
    with tenancy.bound(tenant_id, schema, slug):
        for record_type in RECORD_TYPES:
            after: int | None = 0
            while after is not None:
                for attempt in range(RETRIES):
                    try:
                        # Wait only briefly for a row someone is saving; the batch is retried.
                        db.session.execute(text(f"set local lock_timeout = '{LOCK_TIMEOUT}'"))
                        done = reseal_batch(record_type, after, batch)
                        break
                    except OperationalError:
                        db.session.rollback()
                        if attempt == RETRIES - 1:
                            raise
                        time.sleep(1 + attempt)
                total.records += done.walked
                total.values += done.changed
                total.unreadable += [(record_type, i) for i in done.unreadable]
                if done.walked and echo:
                    echo(
                        f"  {slug} {record_type}: {done.walked} records to id {done.last_id or 'the end'}, "
                        f"{done.changed} values re-encrypted"
                    )
                after = done.last_id
    return total


@click.group("keys", help="Encryption keys of sensitive fields (CRM_ENCRYPTION_KEYS).")
def keys_group() -> None:
    pass


@keys_group.command("generate")
def keys_generate() -> None:
    """Print a new key: put it first in CRM_ENCRYPTION_KEYS (or use one as CRM_BLIND_INDEX_KEY)."""
    from saas.crypto import generate_key

    click.echo(generate_key())


@keys_group.command("rotate")
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Records per transaction.",
)
@click.option("--tenant", "slug", default=None, help="Only this workspace (its slug).")
@with_appcontext
def keys_rotate(batch: int, slug: str | None) -> None:
    """Re-encrypt every sensitive value under the first key of CRM_ENCRYPTION_KEYS."""
    from saas.crypto import CryptoError, keyring
    from saas.extensions import db
    from saas.models import Tenant

    try:
        ring = keyring()
    except CryptoError as err:
        raise click.ClickException(str(err)) from err
    if ring.derived:
        click.echo(
            "note: CRM_ENCRYPTION_KEYS is not set; using the development key derived from SECRET_KEY",
            err=True,
        )
    query = (
        select(Tenant.id, Tenant.schema_name, Tenant.slug)
        .where(Tenant.status != "deleted")
        .order_by(Tenant.id)
    )
    if slug:
        query = query.where(Tenant.slug == slug)
    tenants = db.session.execute(query).all()
    db.session.rollback()
    if slug and not tenants:
        raise click.ClickException(f"no workspace {slug!r}")
    failed = values = unreadable = 0
    for n, (tenant_id, schema, tenant_slug) in enumerate(tenants, start=1):
        try:
            done = rotate_tenant(tenant_id, schema, tenant_slug, batch, echo=click.echo)
        except SQLAlchemyError as err:
            db.session.rollback()
            failed += 1
            click.echo(f"tenant {tenant_slug} (id {tenant_id}) failed; run again to resume: {err}", err=True)
            continue
        values += done.values
        unreadable += len(done.unreadable)
        click.echo(
            f"[{n}/{len(tenants)}] {tenant_slug}: {done.records} records checked, "
            f"{done.values} values re-encrypted"
        )
        if done.unreadable:
            shown = ", ".join(f"{kind} {i}" for kind, i in done.unreadable[:20])
            click.echo(
                f"  {tenant_slug}: {len(done.unreadable)} values no key in CRM_ENCRYPTION_KEYS reads ({shown}); "
                "put the key they were made with back in the list and run again",
                err=True,
            )
    click.echo(
        f"done: {len(tenants) - failed} tenants, {values} values re-encrypted, "
        f"{unreadable} unreadable, {failed} tenants failed"
    )
    if failed or unreadable:
        sys.exit(1)
