"""Backup jobs: nightly rows for every tenant, one job per backup, and the retention pass.

run_backup is idempotent (a good backup is left alone) and safe to retry: each attempt starts from
nothing with a file key of its own (saas.backups.services.run_backup). A worker killed half-way
leaves the row "running" with no good file; RQ retries the abandoned job and that attempt finishes it.
"""

from __future__ import annotations

from sqlalchemy import select

from workers.context import job_context


def nightly_backups() -> int:
    """Periodic (nightly): a backup row for each active tenant and a job for each."""
    from saas.backups import services

    with job_context():
        made = services.schedule_nightly()
        for backup in made:
            services.enqueue_backup(backup)
        return len(made)


def run_backup(tenant_id: int, backup_id: int) -> str:
    """Make one backup of one tenant: dump, store, fetch back and prove by a scratch restore."""
    from saas.backups import services

    with job_context(tenant_id, allow_suspended=True):  # a suspended tenant's data is kept safe too
        backup = services.run_backup(backup_id)
        return f"backup {backup.id}: {backup.status}, {backup.size_bytes} bytes"


def prune_backups() -> int:
    """Periodic (daily): the retention policy for every tenant with backups (a few queries each, so
    one job does them all), then abort S3 uploads that dead workers left unfinished."""
    from saas.backups import services
    from saas.backups.models import Backup
    from saas.extensions import db

    with job_context():
        tenant_ids = list(db.session.scalars(select(Backup.tenant_id).distinct()))
        deleted = 0
        for tenant_id in tenant_ids:
            deleted += len(services.prune(tenant_id).deleted)
        services.abort_stale_uploads()
        return deleted
