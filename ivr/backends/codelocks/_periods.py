"""When a NetCode starts, in the lock's own time, and when the next one takes over.

Codelocks wants the start as the lock's wall clock shows it (`YYYY-MM-DD HH:MM`, on the hour, or
at midnight for durations counted in days), with no offset: the NetCode is computed from those
digits. So the start is the current hour (or day) of the lock's zone, read from an aware `now`.

Daylight-saving changes, with `Europe/London` (the same holds for `America/Toronto` at 02:00):

* Autumn, last Sunday of October: the wall clock shows 01:00-01:59 twice (first BST, 00:00-00:59
  UTC; then GMT, 01:00-01:59 UTC). Both occurrences read `01:00`, and the start carries no offset:
  Codelocks computes the NetCode from the digits alone (same parameters, same NetCode, says its
  guide), so both occurrences get the same NetCode, the one for the lock's 01:00. The period is
  taken from the first occurrence (fold 0, 00:00 UTC) until the wall clock reaches 02:00
  (02:00 UTC), two real hours: a NetCode fetched at the first 01:30 is kept, and still the right
  one, at the second, and Codelocks is asked once.
* Spring, last Sunday of March: 01:00-01:59 does not exist; at 01:00 UTC the clock goes from
  00:59 GMT to 02:00 BST. The `00:00` period ends there (01:00 UTC), after one real hour, and the
  next start is `02:00`: no start names a time the wall clock never shows.

Whether a lock's own clock follows daylight saving is how it was initialised (Codelocks advises
KitLocks set to local time without DST, and its durations carry an `ApplyDST` rule); the start
here is the zone's wall clock, as the contract asks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.backends.codelocks._models import DURATIONS

__all__ = ["START_FORMAT", "netcode_start", "period_end"]

START_FORMAT = "%Y-%m-%d %H:%M"
"""The guide's `yyyy-MM-dd hh:mm`, 24-hour."""


def netcode_start(now: datetime, zone: ZoneInfo, duration: int) -> tuple[str, datetime]:
    """The start to ask Codelocks for at `now` (local to the lock, `YYYY-MM-DD HH:MM`) and the
    end of its period in UTC: the start of the current hour in `zone`, or local midnight when
    `duration` (a duration id) is counted in days."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    length = DURATIONS.get(duration)
    if length is None:
        raise ValueError(f"unknown duration id {duration}")
    local = now.astimezone(zone).replace(tzinfo=None)
    if length.in_days:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(days=1)
    else:
        start = local.replace(minute=0, second=0, microsecond=0)
        step = timedelta(hours=1)
    return start.strftime(START_FORMAT), period_end(start + step, zone)


def period_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant the lock's wall clock first reaches `wall` (naive, local): for a time shown
    twice, its first occurrence; for one skipped in spring, the instant the clock jumps past it."""
    # fold=0 takes the offset in force before a change: the first of two occurrences, and for a
    # skipped time the old offset, which puts it at (or just after) the jump itself.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
