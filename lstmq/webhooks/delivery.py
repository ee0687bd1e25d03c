"""The delivery loop: POST each due delivery of the outbox, at least once.

Several workers run it at once: a delivery is claimed by compare-and-set (its ``next_attempt_at``
moved ``CLAIM_S`` ahead only where it is still due), so one worker sends it at a time; a worker
that dies mid-attempt leaves it due again after ``CLAIM_S``. Outcomes:

- 2xx: delivered.
- 408, 429, 5xx, a timeout or a connection error: tried again after ``backoff_s`` (doubling
  from ``FIRST_RETRY_S`` up to ``MAX_RETRY_S``), the last attempt coming ``RETRY_FOR_S`` or more
  after the first.
- any other status, a redirect included (not followed: a receiver's final URL is registered,
  and a redirect could lead anywhere), or a receiver refused by ``receivers.resolve``: given up.

Each attempt sends the same body (same event id), signed anew (``signing``); only the first
``EXCERPT_CHARS`` of the response are kept.
"""

from __future__ import annotations

import http.client
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import SplitResult

from sqlalchemy import Engine, select, update

from lstmq.db.engine import session_scope
from lstmq.db.schema import WebhookDelivery
from lstmq.webhooks.events import DELIVERED, FAILED, PENDING
from lstmq.webhooks.receivers import UnsafeReceiver, resolve
from lstmq.webhooks.signing import HEADER, signature

TIMEOUT_S = 5.0  # connect, and each read of the response
EXCERPT_CHARS = 200
FIRST_RETRY_S = 10
MAX_RETRY_S = 3600
RETRY_FOR_S = 24 * 3600  # retried at least this long (the waits between attempts add up to it)
CLAIM_S = 60  # a claimed delivery is due again after this, should its worker die mid-attempt
BATCH = 20  # deliveries claimed per pass
RETRIED_STATUSES = {408, 429}
log = logging.getLogger("lstmq.webhooks")


@dataclass
class Attempt:
    status: int | None  # None: no response
    excerpt: str | None  # of the response body, or the error
    retry: bool  # a transient failure


def backoff_s(attempts: int) -> int:
    """The wait after the ``attempts``-th failed attempt."""
    return min(FIRST_RETRY_S * 2 ** min(attempts - 1, 20), MAX_RETRY_S)


def retried_for_s(attempts: int) -> int:
    """The waits after ``attempts`` failed attempts, added up."""
    return sum(backoff_s(n) for n in range(1, attempts + 1))


Poster = Callable[[str, bytes, dict[str, str], bool], Attempt]


def deliver_due(engine: Engine, secret: str, allow_private: bool, now: datetime, post: Poster | None = None) -> int:
    """One pass: claim up to ``BATCH`` due deliveries, POST each, record what happened;
    returns how many were attempted. ``now``: the clock (tests move it)."""
    post = post or post_json
    claimed = claim(engine, now)
    for delivery in claimed:
        body = delivery.body.encode()
        headers = {"content-type": "application/json", HEADER: signature(secret, int(now.timestamp()), body)}
        headers["user-agent"] = "lstmq-webhooks"
        settle(engine, delivery, post(delivery.url, body, headers, allow_private), now)
    return len(claimed)


def claim(engine: Engine, now: datetime) -> list[WebhookDelivery]:
    due = (WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now)
    with session_scope(engine) as session:
        rows = session.scalars(
            select(WebhookDelivery).where(*due).order_by(WebhookDelivery.next_attempt_at).limit(BATCH)
        )
        candidates = list(rows)
        session.expunge_all()
    taken = []
    for delivery in candidates:
        with session_scope(engine) as session:  # compare-and-set: still due, so nobody else took it
            stmt = update(WebhookDelivery).where(WebhookDelivery.id == delivery.id, *due)
            if session.execute(stmt.values(next_attempt_at=now + timedelta(seconds=CLAIM_S))).rowcount == 1:
                taken.append(delivery)
    return taken


def settle(engine: Engine, delivery: WebhookDelivery, attempt: Attempt, now: datetime) -> None:
    attempts = delivery.attempts + 1
    values = {"attempts": attempts, "last_status": attempt.status, "last_error": attempt.excerpt}
    if attempt.status is not None and 200 <= attempt.status < 300:
        values |= {"state": DELIVERED, "next_attempt_at": None, "settled_at": now}
    elif attempt.retry and retried_for_s(attempts - 1) < RETRY_FOR_S:  # this attempt came before 24 h
        values |= {"next_attempt_at": now + timedelta(seconds=backoff_s(attempts))}
    else:
        values |= {"state": FAILED, "next_attempt_at": None, "settled_at": now}
        log.warning(
            "webhook %s of job %s to %s given up: %s", delivery.event, delivery.job_id, delivery.url, attempt.excerpt
        )
    with session_scope(engine) as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values))


def post_json(url: str, body: bytes, headers: dict[str, str], allow_private: bool) -> Attempt:
    """POST ``body`` to ``url``, connecting to the address ``resolve`` checked."""
    try:
        parts, address = resolve(url, allow_private)
    except UnsafeReceiver as exc:
        return Attempt(None, str(exc)[:EXCERPT_CHARS], retry=False)
    conn = _connection(parts, address)
    try:
        conn.request("POST", _target(parts), body=body, headers=headers)
        response = conn.getresponse()
        excerpt = response.read(EXCERPT_CHARS * 4).decode("utf-8", "replace")[:EXCERPT_CHARS]
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS], retry=True)
    finally:
        conn.close()
    status = response.status
    if 300 <= status < 400:
        excerpt = f"redirect to {response.getheader('location', '?')} not followed"[:EXCERPT_CHARS]
    return Attempt(status, excerpt, retry=status >= 500 or status in RETRIED_STATUSES)


def _target(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address; the Host header keeps the URL's host."""

    address = ""

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As ``_PinnedHTTP``, with the certificate checked against the URL's host."""

    address = ""

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _connection(parts: SplitResult, address: str) -> http.client.HTTPConnection:
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    conn = kind(parts.hostname, parts.port, timeout=TIMEOUT_S)
    conn.address = address
    return conn
