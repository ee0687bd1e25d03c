"""A cap on redeliveries of a batch that keeps killing its worker (a "poison" batch).

With acks-late and reject-on-worker-lost, a batch whose worker dies (OOM, SIGKILL) goes back
to the queue, forever unless someone counts. Redis marks such messages ``redelivered``; we
count them per task id and retry number in Redis, so a crash-looping batch is given up after
``MAX_REDELIVERIES`` and its documents recorded failed.

Only a batch that was *running* when its worker died is counted. A threads worker runs several
batches in one process, and when one of them kills it every batch it held comes back
redelivered: batches that merely sat beside a poison one, or waited in the prefetch, must not
be given up for it. So each run sets a marker in Redis and deletes it when it ends; a
redelivery counts only if the marker is still there (its run never ended). A redelivered batch
runs alone in its process (``SharedExclusiveLock``; batches waiting for it set no marker), so
the next crash is charged to it alone. The marker is read when the batch's turn comes: one that
waited through later deaths is counted once, for the death during its run. With solo or
prefork pools a process runs one batch: nothing changes there. The embedded filesystem broker
never redelivers (it removes a message when read): nothing is marked, counted or locked there.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis

from lstmq.errors import ServiceUnavailable
from lstmq.worker.heal.exclusive import SharedExclusiveLock

log = logging.getLogger("lstmq.worker")

MAX_REDELIVERIES = 3  # worker deaths while it ran, per attempt, before the batch is given up
COUNTER_TTL_S = 7 * 24 * 3600
COUNTER_PREFIX = "lstmq:redeliveries"
MARKER_PREFIX = "lstmq:running"
# Not the visibility timeout: a dead worker's batch comes back only after it, maybe behind a long
# queue, and its marker must still be there then. A marker outlives its run only if the worker
# died (then it is what we look for) or Redis was down when the run ended (see ``end_run``).
MARKER_TTL_S = COUNTER_TTL_S

# One round trip, atomic: take the last run's marker, set this run's, count if there was one.
_REDELIVERED_RUN = """
local was_running = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if was_running == 0 then return 0 end
local count = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return count
"""

_HOST = socket.gethostname()
BATCHES = SharedExclusiveLock()  # this process's running batches (threads pool: several)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


@lru_cache(maxsize=4)
def _redelivered_run(url: str):
    return _redis(url).register_script(_REDELIVERED_RUN)


def _runner() -> str:
    """The marker's value: who ran the batch, for a person reading Redis (the pid is read each
    time: prefork children are forks)."""
    return f"{_HOST}:{os.getpid()}"


def tracked(broker_url: str) -> bool:
    """Only Redis redelivers."""
    return broker_url.startswith(("redis://", "rediss://"))


def redelivered(request) -> bool:
    return bool((request.delivery_info or {}).get("redelivered"))


def marker_key(request) -> str:
    return f"{MARKER_PREFIX}:{request.id}:{request.retries}"


def counter_key(request) -> str:
    return f"{COUNTER_PREFIX}:{request.id}:{request.retries}"


def start_run(broker_url: str, request) -> int:
    """Mark this attempt of the task running; returns how many times a worker died while it ran
    (0 on a first delivery, and on a redelivery whose last run had ended or never started).
    ServiceUnavailable when Redis cannot be reached: the task retries."""
    if not tracked(broker_url):
        return 0
    try:
        if not redelivered(request):
            _redis(broker_url).set(marker_key(request), _runner(), ex=MARKER_TTL_S)
            return 0
        keys = [marker_key(request), counter_key(request)]
        return int(_redelivered_run(broker_url)(keys=keys, args=[_runner(), MARKER_TTL_S, COUNTER_TTL_S]))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ServiceUnavailable(f"broker unreachable while marking a batch running: {exc}") from None


def end_run(broker_url: str, request) -> None:
    """Clear the marker. Never raises: the batch is finished, and a marker left behind costs at
    most one extra count should this attempt ever be redelivered (it expires)."""
    if not tracked(broker_url):
        return
    try:
        _redis(broker_url).delete(marker_key(request))
    except redis.RedisError as exc:
        log.warning("task %s: running marker not cleared (%s); it expires in %d s", request.id, exc, MARKER_TTL_S)


@contextmanager
def running(broker_url: str, request, lock: SharedExclusiveLock = BATCHES) -> Iterator[int]:
    """The batch's run: its turn in this process (alone if redelivered), marked in Redis from
    start to end, whatever the end (result, give-up, exception). Yields ``start_run``'s count."""
    if not tracked(broker_url):
        yield 0
        return
    alone = redelivered(request)
    if alone:
        log.info("task %s was redelivered: it runs alone in this process", request.id)
    with lock.exclusive() if alone else lock.shared():
        count = start_run(broker_url, request)
        try:
            yield count
        finally:
            end_run(broker_url, request)


def poison_error(count: int) -> str:
    return f"batch given up: its worker died {count} times while processing it (poison batch?)"
