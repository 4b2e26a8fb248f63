"""Reminder jobs: every minute the due task reminders, daily the "no contact in N days" rule.

The periodic jobs only fan out: one job per active tenant, which takes the tenant id and binds the
tenant itself (tenants.customers.reminders does the work, idempotently).
"""

from __future__ import annotations

from sqlalchemy import select

from workers.context import job_context, tenant_job
from workers.queues import enqueue


def _active_tenant_ids() -> list[int]:
    from saas.extensions import db
    from saas.models import Tenant

    return list(db.session.scalars(select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)))


def fan_out_task_reminders() -> int:
    """Periodic (every minute): queue tenant_task_reminders for every active tenant."""
    with job_context():
        ids = _active_tenant_ids()
    for tenant_id in ids:
        enqueue(tenant_task_reminders, tenant_id, queue_name="default")
    return len(ids)


@tenant_job(hold=False)  # suspended: due reminders wait for the first round after reactivation
def tenant_task_reminders(tenant_id: int) -> int:
    """Claim the tenant's due reminders and queue their emails (a retry never reminds twice)."""
    from saas.cli import link_context
    from tenants.customers.reminders import send_due_reminders

    with job_context(tenant_id), link_context():
        return send_due_reminders()


def fan_out_neglect_rule() -> int:
    """Periodic (daily): queue tenant_neglect_rule for every active tenant."""
    with job_context():
        ids = _active_tenant_ids()
    for tenant_id in ids:
        enqueue(tenant_neglect_rule, tenant_id, queue_name="low")
    return len(ids)


@tenant_job(hold=False)  # suspended: the next daily round does it
def tenant_neglect_rule(tenant_id: int) -> int:
    """Tasks for the owners of the tenant's customers nobody has been in touch with for N days."""
    from saas.cli import link_context
    from tenants.customers.reminders import create_neglect_tasks

    with job_context(tenant_id), link_context():
        return create_neglect_tasks()
