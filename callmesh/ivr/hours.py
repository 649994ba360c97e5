"""Business hours: is a ContactCenter schedule open at an instant?

A :class:`BusinessHours` is compiled once from an ``api`` :class:`Schedule` (weekly hours,
holidays, IANA time zone) and then answers :meth:`BusinessHours.is_open` with integer
compares. Hours are wall-clock times in the schedule's zone (``zoneinfo``): on a DST change
an opening at 09:00 stays at 09:00 local time; a wall time skipped by spring-forward never
happens, and one repeated by fall-back is inside (or outside) the hours both times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callmesh.api.contactcenter import Schedule

__all__ = ["BusinessHours", "ScheduleError", "load_zone"]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    """A schedule cannot be evaluated (names the field and the fix)."""


def load_zone(name: str, where: str) -> ZoneInfo:
    """The IANA zone ``name``, or a :class:`ScheduleError` naming ``where`` it came from."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"{where}: unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from exc


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


Interval = tuple[int, int]
"""[open, close) in minutes after local midnight."""


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A compiled schedule.

    Attributes:
        name: the schedule's name.
        zone: its time zone.
        weekly: per weekday (Monday = 0) the open intervals, in minutes after midnight.
        holidays: date -> intervals for that day (empty: closed all day).
    """

    name: str
    zone: ZoneInfo
    weekly: tuple[tuple[Interval, ...], ...]
    holidays: Mapping[dt.date, tuple[Interval, ...]]

    @classmethod
    def from_schedule(cls, schedule: Schedule, center_zone: str, where: str) -> BusinessHours:
        """Compile ``schedule``; ``center_zone`` applies when it sets no zone of its own.

        Raises:
            ScheduleError: unknown zone, or a holiday with only one of open/close or close
                not after open.
        """
        zone_name = schedule.time_zone or center_zone
        zone_where = f"{where}.timeZone" if schedule.time_zone else "ContactCenter spec.timeZone"
        zone = load_zone(zone_name, zone_where)
        days: list[list[Interval]] = [[] for _ in _WEEKDAYS]
        for hours in schedule.weekly:
            interval = (_minutes(hours.open), _minutes(hours.close))
            for day in hours.days:
                days[_WEEKDAYS.index(day.value)].append(interval)
        holidays: dict[dt.date, tuple[Interval, ...]] = {}
        for index, holiday in enumerate(schedule.holidays):
            field = f"{where}.holidays[{index}]"
            try:
                date = dt.date.fromisoformat(holiday.date)
            except ValueError as exc:
                raise ScheduleError(
                    f"{field}.date: {holiday.date!r} is not a calendar date; use YYYY-MM-DD"
                ) from exc
            if (holiday.open is None) != (holiday.close is None):
                raise ScheduleError(
                    f"{field}: set both open and close for special hours, or neither to close all day"
                )
            if holiday.open is not None and holiday.close is not None:
                opens, closes = _minutes(holiday.open), _minutes(holiday.close)
                if closes <= opens:
                    raise ScheduleError(f"{field}.close: must be after open ({holiday.open})")
                holidays.setdefault(date, ())
                holidays[date] = (*holidays[date], (opens, closes))
            else:
                holidays[date] = ()
        return cls(
            name=schedule.name,
            zone=zone,
            weekly=tuple(tuple(sorted(d)) for d in days),
            holidays=holidays,
        )

    def is_open(self, now: float) -> bool:
        """Whether the schedule is open at POSIX time ``now`` (seconds since the epoch, UTC)."""
        local = dt.datetime.fromtimestamp(now, self.zone)
        minute = local.hour * 60 + local.minute
        intervals = self.holidays.get(local.date())
        if intervals is None:
            intervals = self.weekly[local.weekday()]
        return any(opens <= minute < closes for opens, closes in intervals)
