"""Periodic jobs, run by RQ's cron scheduler inside `crm worker`."""

from __future__ import annotations

from rq.cron import CronScheduler

from workers.maintenance import purge_expired_links


def register_periodic(cron: CronScheduler) -> None:
    cron.register(purge_expired_links, queue_name="low", cron="17 3 * * *")
