"""Attachment jobs: hourly, the files and rows of deleted companies and contacts are purged.

The periodic job only fans out: one job per tenant, which binds the tenant itself
(tenants.customers.attachments.purge_deleted_records does the work, idempotently).
"""

from __future__ import annotations

from sqlalchemy import select

from workers.context import job_context, tenant_job
from workers.queues import enqueue


def fan_out_attachment_purge() -> int:
    """Periodic (hourly): queue tenant_attachment_purge for every active tenant."""
    from saas.extensions import db
    from saas.models import Tenant

    with job_context():
        ids = list(db.session.scalars(select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)))
    for tenant_id in ids:
        enqueue(tenant_attachment_purge, tenant_id, queue_name="low")
    return len(ids)


@tenant_job(hold=False)  # suspended: the first round after reactivation purges
def tenant_attachment_purge(tenant_id: int) -> int:
    """Delete the attachments (files, then rows) of the tenant's records that are gone for good."""
    from tenants.customers.attachments import purge_deleted_records

    with job_context(tenant_id):
        return purge_deleted_records()
