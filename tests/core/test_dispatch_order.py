"""Who is served next (lstmq.dispatch.order): priority first, then owners by weight, then an
owner's jobs in turn. Pure: each test plays many picks and counts who got them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from lstmq.dispatch.order import FairShare, Waiting

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(id_: str, owner: str = "ann", priority: str = "normal", age_s: int = 0) -> Waiting:
    return Waiting(id_, "lstmq.classify", priority, owner, T0 - timedelta(seconds=age_s))


def play(jobs: list[Waiting], picks: int, weights: dict[str, int] | None = None, fair=None) -> Counter:
    """``picks`` batches sent in the order FairShare chooses; job id -> batches it got."""
    fair, weights, got = fair or FairShare(), weights or {}, Counter()
    for _ in range(picks):
        chosen = fair.pick(jobs)
        fair.served(chosen, weights.get(chosen.owner, 1))
        got[chosen.id] += 1
    return got


def test_nothing_waiting_picks_nothing():
    assert FairShare().pick([]) is None


def test_a_higher_priority_is_served_before_any_lower_one():
    got = play([job("bulk", priority="low", age_s=100), job("mid"), job("urgent", priority="high")], 10)
    assert got == Counter({"urgent": 10})


def test_an_unknown_priority_counts_as_the_lowest():
    assert play([job("odd", priority="someday"), job("low", priority="low")], 4) == Counter({"low": 4})


def test_two_owners_of_equal_weight_share_evenly():
    got = play([job("a1", "ann"), job("b1", "bob")], 100)
    assert got == Counter({"a1": 50, "b1": 50})


def test_weights_three_to_one_give_three_quarters():
    got = play([job("a1", "ann"), job("b1", "bob")], 100, weights={"ann": 3})
    assert got == Counter({"a1": 75, "b1": 25})


def test_an_owners_jobs_take_turns_so_a_new_small_job_goes_next():
    fair, big = FairShare(), job("big", age_s=100)
    play([big], 50, fair=fair)  # the big job alone for a while
    small = job("small")
    assert fair.pick([big, small]).id == "small"
    assert play([big, small], 10, fair=fair) == Counter({"small": 5, "big": 5})


def test_an_owner_with_more_jobs_gets_no_more_than_its_share():
    jobs = [job("a1", "ann"), job("a2", "ann"), job("a3", "ann"), job("b1", "bob")]
    got = play(jobs, 90)
    assert got["b1"] == 45 and got["a1"] + got["a2"] + got["a3"] == 45


def test_an_owner_back_after_a_pause_earns_no_burst():
    fair = FairShare()
    play([job("a1", "ann"), job("b1", "bob")], 20, fair=fair)
    fair.keep_only([job("a1", "ann")])
    play([job("a1", "ann")], 100, fair=fair)  # bob had nothing waiting meanwhile
    got = play([job("a1", "ann"), job("b2", "bob")], 20, fair=fair)
    assert got == Counter({"a1": 10, "b2": 10})


def test_among_equals_the_job_with_fewer_batches_in_flight_goes_first():
    busy, idle = job("busy"), job("idle")
    busy.in_flight = 3
    assert FairShare().pick([busy, idle]).id == "idle"
