"""Compliance jobs: exports, the daily retention rule, due tenant deletions, expired export files.

Each takes ids and is idempotent (saas.compliance.services says how): an export marked done is
never redone, a retried export overwrites what a killed attempt stored, a deletion already done is
skipped. Periodic jobs fan out one job per tenant, which binds its tenant itself.
"""

from __future__ import annotations

from sqlalchemy import select

from workers.context import fan_out, job_context, tenant_job
from workers.queues import enqueue


def _last_attempt() -> bool:
    """Whether RQ will not retry the running job after a failure."""
    from rq import get_current_job

    job = get_current_job()
    return job is None or not job.retries_left


@tenant_job(hold=False)  # suspended: stays queued; requeue_stale_exports resumes it
def run_export(tenant_id: int, export_id: int) -> str:
    """Build one export (a person's data or the whole tenant) and store it."""
    from saas.compliance import services

    with job_context(tenant_id):
        try:
            return services.run_export(export_id)
        except Exception as exc:
            services.export_failed(export_id, exc, _last_attempt())
            raise


def requeue_stale_exports(minutes: int = 30) -> int:
    """Periodic: exports left queued or running by a worker that died (no retry came), or skipped while
    their tenant was suspended, are queued again (only for active tenants: a suspended one's wait)."""
    from datetime import UTC, datetime, timedelta

    from saas.compliance.models import PrivacyExport
    from saas.extensions import db
    from saas.models import Tenant

    cutoff = datetime.now(UTC) - timedelta(minutes=minutes)
    with job_context():
        rows = db.session.execute(
            select(PrivacyExport.tenant_id, PrivacyExport.id)
            .join(Tenant, Tenant.id == PrivacyExport.tenant_id)
            .where(
                PrivacyExport.status.in_(("queued", "running")),
                PrivacyExport.created_at < cutoff,
                (PrivacyExport.started_at.is_(None)) | (PrivacyExport.started_at < cutoff),
                Tenant.status == "active",
            )
        ).all()
    for tenant_id, export_id in rows:
        enqueue(run_export, tenant_id, export_id, queue_name="low")
    return len(rows)


def purge_expired_exports() -> int:
    """Periodic (daily): delete export files whose download link has expired."""
    from saas.compliance import services

    with job_context():
        return services.purge_expired_exports()


def fan_out_retention() -> int:
    """Periodic (daily): queue tenant_retention for every active tenant (a suspended one is left as it
    is until reactivated)."""
    return fan_out(tenant_retention, "low")


@tenant_job(hold=False)  # suspended: the next daily round does it
def tenant_retention(tenant_id: int) -> str:
    """Apply one tenant's data-retention rule."""
    from saas.compliance import services

    with job_context(tenant_id):
        done = services.apply_retention()
    return ", ".join(f"{k}: {v}" for k, v in done.items())


def run_due_deletions() -> int:
    """Periodic (hourly): queue the deletion of every tenant whose grace period is over."""
    from saas.compliance import services

    with job_context():
        ids = services.due_deletions()
    for deletion_id in ids:
        enqueue(delete_tenant, deletion_id, queue_name="low")
    return len(ids)


def delete_tenant(deletion_id: int) -> str:
    """Delete one tenant whose deletion is due (files, schema, memberships)."""
    from saas.compliance import services

    with job_context():
        return services.delete_tenant(deletion_id)


RETENTION_HOUR = 3  # UTC hour at which the hourly run also applies the retention rules


def hourly() -> dict[str, int]:
    """The one periodic entry (workers/schedules.py): due deletions, stale and expired exports every
    hour; the tenants' retention rules once a day."""
    from datetime import UTC, datetime

    done = {
        "deletions": run_due_deletions(),
        "requeued_exports": requeue_stale_exports(),
        "expired_exports": purge_expired_exports(),
    }
    if datetime.now(UTC).hour == RETENTION_HOUR:
        done["retention_tenants"] = fan_out_retention()
    return done
