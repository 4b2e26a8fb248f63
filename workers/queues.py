"""One Redis, a few named queues, and the retry policy every job shares."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from redis import Redis
from rq import Queue, Retry

QUEUES = ("high", "default", "low")
# Back-off between attempts, in seconds (needs the worker's scheduler, which `crm worker` runs).
RETRY = Retry(max=4, interval=[5, 30, 120, 600])


@lru_cache(maxsize=4)
def _conn(url: str) -> Redis:
    return Redis.from_url(url)


def redis_conn() -> Redis:
    try:
        from flask import current_app

        url = current_app.config["REDIS_URL"]
    except RuntimeError:
        url = os.environ["REDIS_URL"]
    return _conn(url)


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=redis_conn())


def enqueue(func: Any, *args: Any, queue_name: str = "default", **kwargs: Any) -> Any:
    return queue(queue_name).enqueue(func, *args, retry=RETRY, **kwargs)
