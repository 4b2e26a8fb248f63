"""Periodic jobs, run by RQ's cron scheduler inside `crm worker`."""

from __future__ import annotations

from rq.cron import CronScheduler

from workers.maintenance import purge_expired_links, refill_schema_pool
from workers.reminders import fan_out_neglect_rule, fan_out_task_reminders


def register_periodic(cron: CronScheduler) -> None:
    cron.register(purge_expired_links, queue_name="low", cron="17 3 * * *")
    cron.register(refill_schema_pool, queue_name="low", cron="*/5 * * * *")
    cron.register(fan_out_task_reminders, queue_name="high", cron="* * * * *")
    cron.register(fan_out_neglect_rule, queue_name="low", cron="40 5 * * *")
