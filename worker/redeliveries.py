"""A cap on redeliveries of a batch that keeps killing its worker (a "poison" batch).

With acks-late and reject-on-worker-lost, a batch whose worker dies (OOM, SIGKILL) goes back
to the queue, forever unless someone counts. Redis marks such messages ``redelivered``; we
count them per task id and retry number in Redis, so a crash-looping batch is given up after
``MAX_REDELIVERIES`` and its documents recorded failed. The embedded filesystem broker never
redelivers (it removes a message when read), so nothing is counted there.
"""

from __future__ import annotations

from functools import lru_cache

import redis

from lstmq.errors import ServiceUnavailable

MAX_REDELIVERIES = 3  # deliveries after a crash, per attempt, before the batch is given up
COUNTER_TTL_S = 7 * 24 * 3600
COUNTER_PREFIX = "lstmq:redeliveries"


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def count_redelivery(broker_url: str, request) -> int:
    """How many times this attempt of the task has been redelivered (0 on first delivery)."""
    if not (request.delivery_info or {}).get("redelivered"):
        return 0
    if not broker_url.startswith(("redis://", "rediss://")):
        return 0
    key = f"{COUNTER_PREFIX}:{request.id}:{request.retries}"
    client = _redis(broker_url)
    try:
        count = client.incr(key)
        client.expire(key, COUNTER_TTL_S)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ServiceUnavailable(f"broker unreachable while counting redeliveries: {exc}") from None
    return int(count)


def poison_error(count: int) -> str:
    return f"batch given up: its worker died {count} times while processing it (poison batch?)"
