"""Attachment jobs: hourly, the files and rows of deleted companies and contacts are purged.

The periodic job only fans out: one job per tenant, which binds the tenant itself
(tenants.customers.attachments.purge_deleted_records does the work, idempotently).
"""

from __future__ import annotations

from workers.context import fan_out, job_context, tenant_job


def fan_out_attachment_purge() -> int:
    """Periodic (hourly): queue tenant_attachment_purge for every active tenant."""
    return fan_out(tenant_attachment_purge, "low")


@tenant_job(hold=False)  # suspended: the first round after reactivation purges
def tenant_attachment_purge(tenant_id: int) -> int:
    """Delete the attachments (files, then rows) of the tenant's records that are gone for good."""
    from tenants.customers.attachments import purge_deleted_records

    with job_context(tenant_id):
        return purge_deleted_records()
