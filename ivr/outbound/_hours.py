"""Calling hours: when a `notice` may ring someone, in the line's time zone.

A window such as `08:00-21:00` is local wall-clock time, so it follows daylight-saving changes;
`21:00-06:00` runs over midnight.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


class CallingHours:
    def __init__(self, window: str, zone: str) -> None:
        start, end = window.split("-")
        self.window = window
        self.zone = ZoneInfo(zone)
        self._start = _clock(start)
        self._end = _clock(end)

    def __str__(self) -> str:
        return f"{self.window} {self.zone.key}"

    def open_at(self, epoch: float) -> bool:
        now = datetime.fromtimestamp(epoch, self.zone).time()
        if self._start < self._end:
            return self._start <= now < self._end
        return now >= self._start or now < self._end

    def next_open(self, epoch: float) -> float:
        """`epoch` itself when the window is open then, else when it next opens."""
        if self.open_at(epoch):
            return epoch
        local = datetime.fromtimestamp(epoch, self.zone)
        for days in range(3):
            day = local.date() + timedelta(days=days)
            opening = datetime.combine(day, self._start, tzinfo=self.zone)
            if opening.timestamp() > epoch:
                return opening.timestamp()
        raise AssertionError("a daily window opens within two days")  # pragma: no cover


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time.max if hours == 24 else time(hours, minutes)
