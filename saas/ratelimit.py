"""Fixed-window rate limits in Redis, shared by every web node."""

from __future__ import annotations

import hashlib

from workers.queues import redis_conn


def _key(scope: str, who: str) -> str:
    return f"rl:{scope}:{hashlib.sha256(who.lower().encode()).hexdigest()[:32]}"


def hit(scope: str, who: str, limit: int, window: int) -> bool:
    """Count one attempt; False once more than `limit` attempts fell in the window."""
    key = _key(scope, who)
    pipe = redis_conn().pipeline()
    pipe.incr(key)
    pipe.expire(key, window, nx=True)
    count, _ = pipe.execute()
    return int(count) <= limit


def blocked(scope: str, who: str, limit: int) -> bool:
    value = redis_conn().get(_key(scope, who))
    return value is not None and int(value) >= limit


def reset(scope: str, who: str) -> None:
    redis_conn().delete(_key(scope, who))
