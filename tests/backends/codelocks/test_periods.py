"""The start a NetCode is asked for, in the lock's own time, and when the next one takes over:
across both daylight-saving changes of Europe/London and America/Toronto, for hour and day
durations."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.backends.codelocks import netcode_start

LONDON = ZoneInfo("Europe/London")
TORONTO = ZoneInfo("America/Toronto")
HOUR, FIVE_HOURS, DAY, WEEK = 0, 4, 12, 18


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("now", "start", "end"), [
    # 25 October 2026: at 02:00 BST (01:00 UTC) the clocks go back to 01:00 GMT.
    (utc(2026, 10, 24, 23, 30), "2026-10-25 00:00", utc(2026, 10, 25, 0, 0)),
    (utc(2026, 10, 25, 0, 30), "2026-10-25 01:00", utc(2026, 10, 25, 2, 0)),  # the first 01:30 (BST)
    (utc(2026, 10, 25, 1, 30), "2026-10-25 01:00", utc(2026, 10, 25, 2, 0)),  # the second 01:30 (GMT)
    (utc(2026, 10, 25, 2, 0), "2026-10-25 02:00", utc(2026, 10, 25, 3, 0)),
    # 29 March 2026: at 01:00 UTC the clocks jump from 01:00 GMT to 02:00 BST.
    (utc(2026, 3, 29, 0, 30), "2026-03-29 00:00", utc(2026, 3, 29, 1, 0)),
    (utc(2026, 3, 29, 1, 0), "2026-03-29 02:00", utc(2026, 3, 29, 2, 0)),
    (utc(2026, 3, 29, 1, 59), "2026-03-29 02:00", utc(2026, 3, 29, 2, 0)),
])
def test_london_hour_starts_across_daylight_saving(now: datetime, start: str, end: datetime) -> None:
    assert netcode_start(now, LONDON, FIVE_HOURS) == (start, end)


@pytest.mark.parametrize(("now", "start", "end"), [
    # 1 November 2026: at 02:00 EDT (06:00 UTC) the clocks go back to 01:00 EST.
    (utc(2026, 11, 1, 5, 30), "2026-11-01 01:00", utc(2026, 11, 1, 7, 0)),  # the first 01:30 (EDT)
    (utc(2026, 11, 1, 6, 30), "2026-11-01 01:00", utc(2026, 11, 1, 7, 0)),  # the second 01:30 (EST)
    (utc(2026, 11, 1, 7, 0), "2026-11-01 02:00", utc(2026, 11, 1, 8, 0)),
    # 8 March 2026: at 02:00 EST (07:00 UTC) the clocks jump to 03:00 EDT.
    (utc(2026, 3, 8, 6, 30), "2026-03-08 01:00", utc(2026, 3, 8, 7, 0)),
    (utc(2026, 3, 8, 7, 0), "2026-03-08 03:00", utc(2026, 3, 8, 8, 0)),
])
def test_toronto_hour_starts_across_daylight_saving(now: datetime, start: str, end: datetime) -> None:
    assert netcode_start(now, TORONTO, HOUR) == (start, end)


@pytest.mark.parametrize(("zone", "now", "start", "end"), [
    (LONDON, utc(2026, 10, 25, 12, 0), "2026-10-25 00:00", utc(2026, 10, 26, 0, 0)),  # a 25-hour day
    (LONDON, utc(2026, 10, 24, 23, 30), "2026-10-25 00:00", utc(2026, 10, 26, 0, 0)),  # 00:30 BST
    (LONDON, utc(2026, 3, 29, 12, 0), "2026-03-29 00:00", utc(2026, 3, 29, 23, 0)),  # a 23-hour day
    (TORONTO, utc(2026, 11, 1, 12, 0), "2026-11-01 00:00", utc(2026, 11, 2, 5, 0)),
    (TORONTO, utc(2026, 3, 8, 12, 0), "2026-03-08 00:00", utc(2026, 3, 9, 4, 0)),
    (TORONTO, utc(2026, 6, 16, 3, 30), "2026-06-15 00:00", utc(2026, 6, 16, 4, 0)),  # still the 15th there
])
@pytest.mark.parametrize("duration", [DAY, WEEK])
def test_day_durations_start_at_local_midnight(
    zone: ZoneInfo, now: datetime, start: str, end: datetime, duration: int,
) -> None:
    assert netcode_start(now, zone, duration) == (start, end)


def test_the_start_is_the_same_in_any_time_zone_of_now() -> None:
    now = utc(2026, 6, 15, 13, 20)
    assert netcode_start(now.astimezone(TORONTO), LONDON, HOUR) == netcode_start(now, LONDON, HOUR)
    assert netcode_start(now, LONDON, HOUR) == ("2026-06-15 14:00", utc(2026, 6, 15, 14, 0))


def test_a_naive_now_or_an_unknown_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        netcode_start(datetime(2026, 6, 15, 13, 20), LONDON, HOUR)
    with pytest.raises(ValueError, match="duration"):
        netcode_start(utc(2026, 6, 15, 13, 20), LONDON, 19)
