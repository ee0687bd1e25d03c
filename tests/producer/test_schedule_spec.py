"""Schedule definitions: names, intervals and cron expressions are checked with one-line errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lstmq.errors import ScheduleError
from lstmq.producer.schedules.timing import Timing, check_name, format_interval, parse_cron, parse_interval


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15m", 900), ("6h", 21600), ("1d", 86400), (" 2s ", 2)])
def test_intervals_are_a_number_and_a_unit(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "-3s", "10w", "0s", "367d", "1 hour"])
def test_bad_intervals_are_refused_with_an_example(text):
    with pytest.raises(ScheduleError, match="invalid interval") as exc:
        parse_interval(text)
    assert "\n" not in str(exc.value)


def test_intervals_print_in_their_largest_whole_unit():
    assert [format_interval(s) for s in (45, 120, 7200, 172800, 90)] == ["45s", "2m", "2h", "2d", "90s"]


def test_cron_takes_five_fields_and_knows_their_ranges():
    assert parse_cron("*/5 3 * * 1-5").minute == set(range(0, 60, 5))
    for bad, why in [
        ("0 * * *", "expected 5 fields"),
        ("61 * * * *", "61 > 59"),
        ("0 0 * * 8", "8 > 6"),
        ("0 0 31 2 *", "never occurs"),
    ]:
        with pytest.raises(ScheduleError, match=why):
            parse_cron(bad)


def test_timing_needs_exactly_one_of_every_and_cron():
    for every, cron in [(None, None), ("5m", "0 * * * *")]:
        with pytest.raises(ScheduleError, match="exactly one of --every"):
            Timing.parse(every, cron)
    assert Timing.parse("15m", None).celery_schedule().run_every == timedelta(minutes=15)
    assert Timing.parse(None, "0  *  * * *").cron == "0 * * * *"


def test_a_beat_message_expires_after_one_period_so_backlogs_never_pile_up():
    assert Timing(every_s=2).message_expiry_s() == 10  # but never sooner than 10 s
    assert Timing(every_s=900).message_expiry_s() == 900
    assert Timing(cron="0 * * * *").message_expiry_s() == 60


@pytest.mark.parametrize("name", ["", "-x", "a b", "../etc", "x" * 65, "é"])
def test_schedule_names_are_short_and_plain(name):
    with pytest.raises(ScheduleError, match="invalid schedule name"):
        check_name(name)
    assert check_name("daily_dumps-2.v1") == "daily_dumps-2.v1"
