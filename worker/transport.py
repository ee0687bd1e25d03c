"""The Redis transport with a guard against poison messages: whoever can write to Redis can
push anything into a queue, and one bad message must not end the worker.

kombu parses each message as it pops it: a list item that is not a JSON envelope, or an envelope
missing its fields, raised out of the consumer loop and stopped the worker; a compressed body was
inflated whole before anything looked at it (a 512 MiB zlib bomb). Here such a message is logged
and dropped (it has already left the queue), a compressed or oversized body is refused, and
Celery then logs and acknowledges it like any message it cannot decode. Pickle and other
content types are refused by Celery (``accept_content=["json"]``); unknown task names too.
"""

from __future__ import annotations

import logging
import sys

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Message
from redis import exceptions as redis_errors

from lstmq.contract import MAX_MESSAGE_BYTES

log = logging.getLogger("lstmq.worker")
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)  # what bad data raises


class Refused(ValueError):
    """A message lstmq never sends."""


def _refusal(reason: str):
    try:
        raise Refused(reason)
    except Refused:
        return sys.exc_info()  # the form kombu keeps a message's errors in


class GuardedMessage(Message):
    """A message whose compressed or oversized body is refused instead of inflated or decoded."""

    def __init__(self, payload, channel=None, **kwargs):
        headers = payload.get("headers") if isinstance(payload, dict) else None
        compression = headers.pop("compression", None) if isinstance(headers, dict) else None
        body = payload.get("body") if isinstance(payload, dict) else None
        if isinstance(body, str | bytes) and len(body) > MAX_MESSAGE_BYTES:
            payload["body"] = ""
            compression = compression or f"oversize ({len(body)} bytes)"
        super().__init__(payload, channel=channel, **kwargs)
        if compression:
            self.errors.append(_refusal(f"message refused: {compression} body (lstmq sends plain JSON)"))


def dropped(exc: Exception) -> None:
    log.error("malformed message dropped (%s: %s)", type(exc).__name__, str(exc)[:200])


class GuardedChannel(kombu_redis.Channel):
    Message = GuardedMessage

    def _connparams(self, asynchronous=False):
        """A released connection is a lost connection. kombu 5.7 closes a channel whose broker went
        away by restoring its unacknowledged messages through the connection the consumer has
        already released (``client`` is None): the AttributeError that followed was an
        unrecoverable error and ended the worker. A connection error is what Celery expects: it
        ignores it while closing and reconnects; the messages stay unacknowledged in Redis."""
        if self.connection is None or self.connection.client is None:
            raise redis_errors.ConnectionError("the broker connection was released")
        return super()._connparams(asynchronous=asynchronous)

    def _brpop_read(self, **options):
        """A list item that is not JSON fails to parse here, before it is delivered."""
        try:
            return super()._brpop_read(**options)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: never a connection error
            dropped(exc)
            return True

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        """An error past kombu's parsing leaves the message unacked, holding the consumer's only
        prefetch slot: acknowledge it, so it is neither stuck nor delivered again."""

        def guarded(message):
            try:
                return callback(message)
            except MALFORMED as exc:
                dropped(exc)
                self.basic_ack(message.delivery_tag)

        return super().basic_consume(queue, no_ack, guarded, consumer_tag, **kwargs)


class GuardedTransport(kombu_redis.Transport):
    Channel = GuardedChannel

    def _deliver(self, message, queue):
        """A JSON item that is not an envelope fails when its message is made (nothing to ack).
        kombu counts a KeyError as a lost connection: it must not get that far."""
        try:
            super()._deliver(message, queue)
        except MALFORMED as exc:
            dropped(exc)
