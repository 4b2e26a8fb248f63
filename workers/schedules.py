"""Periodic jobs, run by RQ's cron scheduler inside `crm worker`.

Every `crm worker` runs a scheduler, so several may find the same job due. RQ's cron scheduler takes
no lock (its RQScheduler, for retries, holds a SET NX lock per queue), so each slot of each job is
claimed here with SET NX on `crm:cron:<job>:<slot>`: whichever scheduler claims it enqueues the job,
the others only move on to the next slot. No leader to hand over: a scheduler that dies costs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter
from rq import cron as rq_cron
from rq.cron import CronJob, CronScheduler

from workers.attachments import fan_out_attachment_purge
from workers.backups import nightly_backups, prune_backups
from workers.billing import daily_billing
from workers.compliance import hourly as compliance_hourly
from workers.maintenance import purge_expired_links, refill_schema_pool
from workers.reminders import fan_out_neglect_rule, fan_out_task_reminders

CLAIM_MARGIN = 120  # seconds a claim outlives its slot's period (clocks of two hosts a little apart)


def slot(job: CronJob, at: datetime) -> tuple[int, int]:
    """The latest moment at or before `at` the job was due (epoch seconds), and how long that slot is
    the latest one (its period plus a margin) — the claim's expiry. A scheduler that fell behind thus
    claims the slot the others already did, never a stale one of its own."""
    if job.cron:
        # Cron fields match local time, as RQ reads them (rq.cron.CronJob.get_next_enqueue_time).
        local = at.astimezone().replace(tzinfo=None)
        due = croniter(job.cron, local + timedelta(microseconds=1)).get_prev(datetime)
        following = croniter(job.cron, due).get_next(datetime)
        start = int(due.replace(fold=0).timestamp())
        return start, int(following.replace(fold=0).timestamp()) - start + CLAIM_MARGIN
    interval = int(job.interval or 60)
    return int(at.timestamp()) // interval * interval, interval + CLAIM_MARGIN


class PeriodicScheduler(CronScheduler):
    """RQ's cron scheduler that enqueues a due job only if it claims the job's slot first."""

    def claim(self, job: CronJob, at: datetime) -> bool:
        start, ttl = slot(job, at)
        return bool(self.connection.set(f"crm:cron:{job.name}:{start}", self.name, nx=True, ex=ttl))

    def enqueue_jobs(self) -> list[CronJob]:
        enqueue_time = rq_cron.now()
        enqueued: list[CronJob] = []
        for job in self._cron_jobs:
            if not job.should_run():
                continue
            if self.claim(job, enqueue_time):
                job.enqueue(self.connection)
                enqueued.append(job)
            job.set_enqueue_time(enqueue_time)  # claimed here or elsewhere: this slot is done
        return enqueued


def register_periodic(cron: CronScheduler) -> None:
    cron.register(purge_expired_links, queue_name="low", cron="17 3 * * *")
    cron.register(refill_schema_pool, queue_name="low", cron="*/5 * * * *")
    cron.register(fan_out_task_reminders, queue_name="high", cron="* * * * *")
    cron.register(fan_out_neglect_rule, queue_name="low", cron="40 5 * * *")
    cron.register(daily_billing, queue_name="low", cron="50 23 * * *")  # seat ledger, grace and trial ends
    cron.register(nightly_backups, queue_name="low", cron="30 1 * * *")  # each tenant, proven by a restore
    cron.register(prune_backups, queue_name="low", cron="30 5 * * *")  # 7 daily, 4 weekly, 12 monthly
    cron.register(compliance_hourly, queue_name="low", cron="23 * * * *")  # deletions, exports, retention
    cron.register(fan_out_attachment_purge, queue_name="low", cron="47 * * * *")  # deleted records' files
