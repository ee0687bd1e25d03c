"""A submit sends full batches from a thread while it records the next chunk (``OverlappedSends``)."""

from __future__ import annotations

import threading

import pytest

from lstmq.errors import ServiceUnavailable
from lstmq.producer.submit import OverlappedSends
from tests.support.waiting import wait_until


def test_a_poke_while_a_send_runs_is_skipped_and_the_next_one_sends_again():
    started, release, sends = threading.Event(), threading.Event(), []

    def send():
        sends.append(threading.current_thread().name)
        started.set()
        release.wait(timeout=30)

    with OverlappedSends(send) as early:
        early.poke()
        assert started.wait(timeout=30)
        early.poke()  # the first send still runs: nothing more is queued behind it
        release.set()
        early.drain()
        early.poke()
        early.drain()
    assert len(sends) == 2 and all(name.startswith("lstmq-send") for name in sends)


def test_a_failed_send_is_raised_by_the_next_poke():
    def send():
        raise ServiceUnavailable("broker unreachable")

    with OverlappedSends(send) as early:
        early.poke()
        early.drain(quiet=True)  # waited for, its error kept back...
        early.poke()
        with pytest.raises(ServiceUnavailable):  # ...but a later send's error is not
            early.drain()


def test_the_error_of_a_finished_send_is_raised_by_the_next_poke():
    def send():
        raise ServiceUnavailable("broker unreachable")

    def poke_raises(early: OverlappedSends) -> bool:
        try:
            early.poke()  # skipped while the failing send is still finishing
        except ServiceUnavailable:
            return True
        return False

    with OverlappedSends(send) as early:
        early.poke()
        wait_until(lambda: poke_raises(early), 30, "the send's error", interval_s=0.01)
