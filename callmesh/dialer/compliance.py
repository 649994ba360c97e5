"""The rules checked before every dial, and the abandonment rate as regulators measure it."""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from callmesh.api.dialercampaign import AbandonPeriod, CallingWindow

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def local_time(now: float, time_zone: str) -> dt.datetime:
    """The wall-clock time in ``time_zone`` at POSIX time ``now``."""
    return dt.datetime.fromtimestamp(now, tz=ZoneInfo(time_zone))


def window_open(window: CallingWindow, time_zone: str, now: float) -> bool:
    """Whether ``now`` falls inside the calling window in the contact's own time zone."""
    local = local_time(now, time_zone)
    if _WEEKDAYS[local.weekday()] not in {d.value for d in window.days}:
        return False
    hhmm = local.strftime("%H:%M")
    return window.start <= hhmm < window.end


def window_ever_opens(window: CallingWindow) -> bool:
    """Whether the window opens at all in a week (some day listed, start before end)."""
    return bool(window.days) and window.start < window.end


def next_local_time(now: float, time_zone: str, hhmm: str) -> float:
    """A lower bound of the first POSIX time after ``now`` when the wall clock in ``time_zone``
    shows ``hhmm`` or later on a later date or later today (the next opening of a calling
    window that starts at ``hhmm``; with ``"00:00"``, the next local midnight).

    When the UTC offset changes in between (a DST change: the wall clock may jump back into
    the window, or back to the same date) nothing is promised: ``-inf``. Otherwise the
    earlier of the wall time's two readings is taken, a second earlier still, so the answer
    is never late.
    """
    zone = ZoneInfo(time_zone)
    local = dt.datetime.fromtimestamp(now, tz=zone)
    hour, minute = (int(x) for x in hhmm.split(":"))
    day = local.date()
    if (local.hour, local.minute) >= (hour, minute):
        day += dt.timedelta(days=1)
    wall = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if wall.utcoffset() != local.utcoffset() or wall.replace(fold=1).utcoffset() != (
        local.utcoffset()
    ):
        return -math.inf
    return min(wall.timestamp(), wall.replace(fold=1).timestamp()) - 1.0


def local_day(now: float, time_zone: str) -> str:
    """The contact's local calendar date, for per-day frequency caps."""
    return local_time(now, time_zone).date().isoformat()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Why a number was or was not dialled, kept for every decision."""

    at: float
    contact_id: str
    phone: str
    dialled: bool
    reason: str


class AbandonMeter:
    """Abandonment rate per campaign over a day or a rolling 30 days, as regulators count it.

    Rate = calls answered by a person that got no agent within the compliance window, over
    all calls answered by a person, in the period (the campaign's own time zone decides
    where a day starts).
    """

    def __init__(self, period: AbandonPeriod, time_zone: str) -> None:
        self._period = period
        self._zone = time_zone
        self._days: deque[tuple[str, int, int]] = deque()  # (date, answered, abandoned)
        self._totals: tuple[str, tuple[int, int]] | None = None  # (day, totals) until a record
        self._day: tuple[float, float, str] = (math.inf, -math.inf, "")  # [from, until): day

    def _bucket(self, now: float) -> str:
        start, until, day = self._day
        if start <= now < until:  # the pacer asks every second: same local day, known
            return day
        day = local_day(now, self._zone)
        # next_local_time is a second early (or -inf across a UTC offset change: no reuse)
        self._day = (now, next_local_time(now, self._zone, "00:00"), day)
        return day

    def _record(self, now: float, answered: int, abandoned: int) -> None:
        self._totals = None
        day = self._bucket(now)
        if self._days and self._days[-1][0] == day:
            _, a, b = self._days[-1]
            self._days[-1] = (day, a + answered, b + abandoned)
        else:
            self._days.append((day, answered, abandoned))
        while len(self._days) > 31:
            self._days.popleft()

    def answered(self, now: float) -> None:
        """A call was answered by a person."""
        self._record(now, 1, 0)

    def abandoned(self, now: float) -> None:
        """An answered call got no agent within the compliance window."""
        self._record(now, 0, 1)

    def totals(self, now: float) -> tuple[int, int]:
        """(answered, abandoned) in the period that contains ``now``."""
        day = self._bucket(now)
        known = self._totals
        if known is not None and known[0] == day:  # the pacer asks every second
            return known[1]
        today = dt.date.fromisoformat(day)
        first = today if self._period is AbandonPeriod.day else today - dt.timedelta(days=29)
        answered = abandoned = 0
        for recorded, a, b in self._days:
            if first <= dt.date.fromisoformat(recorded) <= today:
                answered += a
                abandoned += b
        self._totals = (day, (answered, abandoned))
        return answered, abandoned

    def by_day(self) -> dict[str, tuple[int, int]]:
        """(answered, abandoned) of each day kept (the last 31), by local date."""
        return {day: (a, b) for day, a, b in self._days}

    def rate(self, now: float) -> float:
        """The abandonment rate in the period that contains ``now`` (0 before any answer)."""
        answered, abandoned = self.totals(now)
        return abandoned / answered if answered else 0.0
