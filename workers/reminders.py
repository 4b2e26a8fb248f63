"""Reminder jobs: every minute the due task reminders, daily the "no contact in N days" rule.

The periodic jobs only fan out: one job per active tenant, which takes the tenant id and binds the
tenant itself (tenants.customers.reminders does the work, idempotently).
"""

from __future__ import annotations

from workers.context import fan_out, job_context, tenant_job


def fan_out_task_reminders() -> int:
    """Periodic (every minute): queue tenant_task_reminders for every active tenant."""
    return fan_out(tenant_task_reminders, "default")


@tenant_job(hold=False)  # suspended: due reminders wait for the first round after reactivation
def tenant_task_reminders(tenant_id: int) -> int:
    """Claim the tenant's due reminders and queue their emails (a retry never reminds twice)."""
    from saas.cli import link_context
    from tenants.customers.reminders import send_due_reminders

    with job_context(tenant_id), link_context():
        return send_due_reminders()


def fan_out_neglect_rule() -> int:
    """Periodic (daily): queue tenant_neglect_rule for every active tenant."""
    return fan_out(tenant_neglect_rule, "low")


@tenant_job(hold=False)  # suspended: the next daily round does it
def tenant_neglect_rule(tenant_id: int) -> int:
    """Tasks for the owners of the tenant's customers nobody has been in touch with for N days."""
    from saas.cli import link_context
    from tenants.customers.reminders import create_neglect_tasks

    with job_context(tenant_id), link_context():
        return create_neglect_tasks()
