"""Periodic jobs, run by RQ's cron scheduler inside `crm worker`."""

from __future__ import annotations

from rq.cron import CronScheduler

from workers.backups import nightly_backups, prune_backups
from workers.billing import daily_billing
from workers.compliance import hourly as compliance_hourly
from workers.maintenance import purge_expired_links, refill_schema_pool
from workers.reminders import fan_out_neglect_rule, fan_out_task_reminders


def register_periodic(cron: CronScheduler) -> None:
    cron.register(purge_expired_links, queue_name="low", cron="17 3 * * *")
    cron.register(refill_schema_pool, queue_name="low", cron="*/5 * * * *")
    cron.register(fan_out_task_reminders, queue_name="high", cron="* * * * *")
    cron.register(fan_out_neglect_rule, queue_name="low", cron="40 5 * * *")
    cron.register(daily_billing, queue_name="low", cron="50 23 * * *")  # seat ledger, grace and trial ends
    cron.register(nightly_backups, queue_name="low", cron="30 1 * * *")  # each tenant, proven by a restore
    cron.register(prune_backups, queue_name="low", cron="30 5 * * *")  # 7 daily, 4 weekly, 12 monthly
    cron.register(compliance_hourly, queue_name="low", cron="23 * * * *")  # deletions, exports, retention
