"""Fixed-window rate limits in Redis, shared by every web node."""

from __future__ import annotations

import hashlib

from workers.queues import redis_conn

# INCR and start the window on the first hit, atomically (EXPIRE NX needs Redis 7; the embedded one is 6).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def _key(scope: str, who: str) -> str:
    return f"rl:{scope}:{hashlib.sha256(who.lower().encode()).hexdigest()[:32]}"


def hit(scope: str, who: str, limit: int, window: int) -> bool:
    """Count one attempt; False once more than `limit` attempts fell in the window."""
    count = redis_conn().eval(_HIT, 1, _key(scope, who), window)
    return int(count) <= limit


def blocked(scope: str, who: str, limit: int) -> bool:
    value = redis_conn().get(_key(scope, who))
    return value is not None and int(value) >= limit


def reset(scope: str, who: str) -> None:
    redis_conn().delete(_key(scope, who))
