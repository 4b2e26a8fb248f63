"""`crm worker`: one RQ worker on every queue, with RQ's scheduler and the periodic jobs."""

from __future__ import annotations

import threading

from rq import Worker

from workers.queues import QUEUES, queue, redis_conn
from workers.schedules import PeriodicScheduler, register_periodic


class _ThreadedCron(PeriodicScheduler):
    """The cron scheduler (each slot enqueued once across workers) in a thread beside the worker.
    Python lets only the main thread install signal handlers, so it leaves them to the worker; the
    daemon thread ends with the process."""

    def _install_signal_handlers(self) -> None:
        pass


def run_worker(burst: bool = False) -> None:
    conn = redis_conn()
    # The worker first: it raises the pool's socket timeout above its blocking dequeue, but only for
    # connections made after that (one made earlier keeps redis-py's 5 s and cuts every BLPOP short).
    worker = Worker([queue(name) for name in QUEUES], connection=conn)
    if not burst:
        cron = _ThreadedCron(connection=conn)
        register_periodic(cron)
        threading.Thread(target=cron.start, name="rq-cron", daemon=True).start()
    worker.work(with_scheduler=True, burst=burst)
