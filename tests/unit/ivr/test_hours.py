"""Business hours in the schedule's zone: weekly hours, holidays, DST edges."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from callmesh.api.contactcenter import Schedule
from callmesh.ivr.hours import BusinessHours, ScheduleError


def utc(text: str) -> float:
    """POSIX time of an ISO UTC timestamp such as 2026-03-29T01:00."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def hours(body: dict[str, Any], center_zone: str = "UTC") -> BusinessHours:
    return BusinessHours.from_schedule(Schedule.model_validate(body), center_zone, "schedules[0]")


def weekly(days: list[str], opens: str, closes: str, **extra: Any) -> dict[str, Any]:
    return {"name": "s", "weekly": [{"days": days, "open": opens, "close": closes}], **extra}


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        ("2026-11-23T06:59", False),  # Monday 07:59 Berlin
        ("2026-11-23T07:00", True),  # 08:00, opening minute included
        ("2026-11-23T16:59", True),  # 17:59
        ("2026-11-23T17:00", False),  # 18:00, closing minute excluded
        ("2026-11-22T10:00", False),  # Sunday
    ],
)
def test_weekly_hours_in_the_schedule_zone(
    business: dict[str, Any], at: str, is_open: bool
) -> None:
    assert hours(business).is_open(utc(at)) is is_open


def test_schedule_without_zone_uses_the_center_zone() -> None:
    schedule = weekly(["mon"], "09:00", "17:00")
    at = utc("2026-11-23T14:30")  # 09:30 in New York, 14:30 in UTC, 23:30 in Tokyo
    assert hours(schedule, "America/New_York").is_open(at)
    assert hours(schedule, "UTC").is_open(at)
    assert not hours(schedule, "Asia/Tokyo").is_open(at)


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        ("2026-12-25T09:00", False),  # Friday, Christmas Day: closed all day
        ("2026-12-24T09:00", True),  # Christmas Eve: special hours 08:00-12:00 Berlin
        ("2026-12-24T10:59", True),
        ("2026-12-24T11:00", False),  # 12:00 Berlin
        ("2026-12-23T16:00", True),  # an ordinary Wednesday, 17:00 Berlin
    ],
)
def test_holidays_closed_or_special_hours(business: dict[str, Any], at: str, is_open: bool) -> None:
    assert hours(business).is_open(utc(at)) is is_open


def test_holiday_dates_are_local_dates() -> None:
    always = weekly(
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "00:00",
        "23:59",
        timeZone="Europe/Berlin",
        holidays=[{"date": "2026-12-25"}],
    )
    compiled = hours(always)
    assert compiled.is_open(utc("2026-12-24T22:30"))  # 23:30 on the 24th in Berlin
    assert not compiled.is_open(utc("2026-12-24T23:30"))  # 00:30 on the 25th in Berlin


def test_opening_follows_wall_clock_across_spring_forward(business: dict[str, Any]) -> None:
    compiled = hours(business)
    # Before the change (CET, UTC+1) 08:00 Berlin is 07:00 UTC ...
    assert not compiled.is_open(utc("2026-03-27T06:30"))
    assert compiled.is_open(utc("2026-03-27T07:00"))
    # ... after it (CEST, UTC+2) it is 06:00 UTC.
    assert compiled.is_open(utc("2026-03-30T06:00"))
    assert not compiled.is_open(utc("2026-03-30T05:59"))
    assert not compiled.is_open(utc("2026-03-30T16:00"))  # 18:00 CEST


def test_hours_inside_the_skipped_spring_forward_hour() -> None:
    # Berlin jumps from 02:00 to 03:00 on Sunday 2026-03-29: 02:30 never happens.
    sunday = hours(weekly(["sun"], "02:30", "03:30", timeZone="Europe/Berlin"))
    assert not sunday.is_open(utc("2026-03-29T00:59"))  # 01:59 CET
    assert sunday.is_open(utc("2026-03-29T01:00"))  # 03:00 CEST, right after the jump
    assert sunday.is_open(utc("2026-03-29T01:29"))  # 03:29 CEST
    assert not sunday.is_open(utc("2026-03-29T01:30"))  # 03:30 CEST
    # The schedule was open for 30 real minutes that day, not 60.
    minutes = sum(sunday.is_open(utc("2026-03-29T00:00") + 60 * m) for m in range(0, 24 * 60))
    assert minutes == 30


def test_hours_inside_the_repeated_fall_back_hour() -> None:
    # Berlin goes from 03:00 CEST back to 02:00 CET on Sunday 2026-10-25: 02:15 happens twice.
    sunday = hours(weekly(["sun"], "02:00", "02:30", timeZone="Europe/Berlin"))
    assert sunday.is_open(utc("2026-10-25T00:15"))  # 02:15 CEST
    assert not sunday.is_open(utc("2026-10-25T00:45"))  # 02:45 CEST
    assert sunday.is_open(utc("2026-10-25T01:15"))  # 02:15 CET, the second time
    assert not sunday.is_open(utc("2026-10-25T01:45"))
    minutes = sum(sunday.is_open(utc("2026-10-24T22:00") + 60 * m) for m in range(0, 6 * 60))
    assert minutes == 60  # open twice for 30 minutes


def test_new_york_dst_edges() -> None:
    compiled = hours(weekly(["sun", "mon"], "09:00", "17:00", timeZone="America/New_York"))
    assert compiled.is_open(utc("2026-03-08T13:00"))  # Sunday after the change: 09:00 EDT
    assert not compiled.is_open(utc("2026-03-01T13:00"))  # Sunday before it: 08:00 EST
    assert compiled.is_open(utc("2026-11-02T14:00"))  # Monday after fall back: 09:00 EST
    assert not compiled.is_open(utc("2026-11-02T13:30"))  # 08:30 EST


def test_several_intervals_a_day() -> None:
    body = {
        "name": "split",
        "weekly": [
            {"days": ["mon"], "open": "08:00", "close": "12:00"},
            {"days": ["mon"], "open": "13:00", "close": "17:00"},
        ],
    }
    compiled = hours(body)
    assert compiled.is_open(utc("2026-11-23T11:59"))
    assert not compiled.is_open(utc("2026-11-23T12:30"))
    assert compiled.is_open(utc("2026-11-23T13:00"))


def test_unknown_time_zone_names_the_field() -> None:
    with pytest.raises(
        ScheduleError, match=r"schedules\[0\]\.timeZone: unknown time zone 'Mars/Base'"
    ):
        hours(weekly(["mon"], "08:00", "17:00", timeZone="Mars/Base"))
    with pytest.raises(ScheduleError, match=r"ContactCenter spec\.timeZone"):
        hours(weekly(["mon"], "08:00", "17:00"), "Nowhere/City")


@pytest.mark.parametrize(
    ("holiday", "message"),
    [
        ({"date": "2026-12-24", "open": "08:00"}, "set both open and close"),
        ({"date": "2026-12-24", "open": "12:00", "close": "08:00"}, r"close: must be after open"),
        ({"date": "2026-02-30"}, "not a calendar date"),
    ],
)
def test_bad_holidays_name_the_field(holiday: dict[str, Any], message: str) -> None:
    body = weekly(["mon"], "08:00", "17:00", holidays=[holiday])
    with pytest.raises(ScheduleError, match=r"schedules\[0\]\.holidays\[0\]"):
        hours(body)
    with pytest.raises(ScheduleError, match=message):
        hours(body)
