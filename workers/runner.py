"""`crm worker`: one RQ worker on every queue, with RQ's scheduler and the periodic jobs."""

from __future__ import annotations

import threading

from rq import Worker
from rq.cron import CronScheduler

from workers.queues import QUEUES, queue, redis_conn
from workers.schedules import register_periodic


def run_worker(burst: bool = False) -> None:
    conn = redis_conn()
    if not burst:
        cron = CronScheduler(connection=conn)
        register_periodic(cron)
        threading.Thread(target=cron.start, name="rq-cron", daemon=True).start()
    worker = Worker([queue(name) for name in QUEUES], connection=conn)
    worker.work(with_scheduler=True, burst=burst)
