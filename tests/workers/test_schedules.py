"""The periodic jobs with two `crm worker` processes: both schedulers tick against the real Redis, and
each job is enqueued once per slot (not once per worker)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture
def utc_local_time(monkeypatch):
    """Cron fields match local time: make it UTC, so the slots below are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _enqueued(app) -> Counter:
    from workers.queues import QUEUES, queue

    with app.app_context():
        return Counter(job.func_name for name in QUEUES for job in queue(name).get_jobs())


def test_two_schedulers_enqueue_each_periodic_job_once_per_slot(app, monkeypatch, utc_local_time):
    """Two scheduler loops (the real schedule, each with its own Redis connection) tick together once a
    simulated minute, from 23:19:30 to 00:00:30, and race for every due job. Each job is in the queues
    once per slot of that span: every minute 41 times, every 5 minutes 9, the hourly ones once, daily
    at 23:50 once, the others not at all (without the claim, as RQ's CronScheduler does, each twice)."""
    from redis import Redis
    from rq import cron as rq_cron

    from workers.schedules import PeriodicScheduler, register_periodic

    clock = [datetime(2031, 3, 4, 23, 19, 30, tzinfo=UTC)]
    monkeypatch.setattr(rq_cron, "now", lambda: clock[0])
    schedulers = []
    for name in ("worker-a", "worker-b"):
        scheduler = PeriodicScheduler(Redis.from_url(app.config["REDIS_URL"]), name=name)
        register_periodic(scheduler)
        schedulers.append(scheduler)

    ticks = 41
    tick = threading.Barrier(
        2, action=lambda: clock.__setitem__(0, clock[0] + timedelta(minutes=1)), timeout=10
    )
    enqueued: dict[str, int] = {}
    errors: list[BaseException] = []

    def loop(scheduler: PeriodicScheduler) -> None:
        try:
            count = 0
            for _ in range(ticks):
                tick.wait()
                count += len(scheduler.enqueue_jobs())
            enqueued[scheduler.name] = count
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
            tick.abort()

    threads = [threading.Thread(target=loop, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert clock[0] == datetime(2031, 3, 5, 0, 0, 30, tzinfo=UTC)

    assert _enqueued(app) == {
        "workers.reminders.fan_out_task_reminders": 41,  # 23:20 ... 00:00
        "workers.maintenance.refill_schema_pool": 9,  # 23:20, 23:25 ... 00:00
        "workers.compliance.hourly": 1,  # 23:23
        "workers.attachments.fan_out_attachment_purge": 1,  # 23:47
        "workers.billing.daily_billing": 1,  # 23:50
    }
    assert sum(enqueued.values()) == 53  # what the two loops say they enqueued, together
    # Every slot was claimed once, by one of the two (the claims expire on their own).
    with app.app_context():
        conn = Redis.from_url(app.config["REDIS_URL"])
        claims = list(conn.scan_iter("crm:cron:*"))
        assert len(claims) == 53
        assert {conn.get(key) for key in claims} <= {b"worker-a", b"worker-b"}
        assert all(0 < conn.ttl(key) <= 3600 + 24 * 3600 for key in claims)
