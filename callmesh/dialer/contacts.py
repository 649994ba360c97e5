"""Contact lists and do-not-call lists: parsed once, bad rows reported (row and reason) and skipped."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SEPARATORS = re.compile(r"[\s().\-/]")
_ID = re.compile(r"^[A-Za-z0-9_.@+:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REQUIRED_COLUMNS = ("id", "phone")


@dataclass(frozen=True, slots=True)
class Contact:
    """A person to call: id, E.164 number, IANA time zone and free attributes for the agent."""

    id: str
    phone: str
    time_zone: str
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that was skipped: its line in the file (1 is the header) and why."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ContactList:
    """The valid contacts of a list, in file order, and the rows that were skipped."""

    contacts: tuple[Contact, ...]
    problems: tuple[RowProblem, ...]


def normalize_phone(raw: str) -> str | None:
    """``raw`` as E.164 (``+`` and 7-15 digits) after removing spaces, dashes, dots and brackets."""
    value = _SEPARATORS.sub("", raw.strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    return value if _E164.match(value) else None


def valid_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone known to this machine's tz database."""
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_contact_csv(text: str, default_time_zone: str) -> ContactList:
    """Parse a CSV contact list with columns ``id``, ``phone``, optional ``timeZone``, then attributes.

    Rows with a missing id, a number that is not E.164, an unknown time zone, or an id or
    number already seen are skipped and reported; the rest are kept in order.
    """
    problems: list[RowProblem] = []
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return ContactList(
            (),
            (
                RowProblem(
                    1,
                    f"header lacks column(s) {', '.join(missing)}: the first line must name id,phone[,timeZone,...]",
                ),
            ),
        )
    contacts: list[Contact] = []
    seen_ids: set[str] = set()
    seen_phones: dict[str, int] = {}
    for index, row in enumerate(reader, start=2):
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            problems.append(RowProblem(index, "more values than columns in the header"))
            continue
        contact_id = clean.get("id", "")
        if not contact_id:
            problems.append(RowProblem(index, "empty id"))
            continue
        if not _ID.match(contact_id):
            problems.append(
                RowProblem(
                    index,
                    f"id {contact_id[:40]!r} may hold only letters, digits and _ . @ + : -"
                    " (up to 128; it names the call on the switch)",
                )
            )
            continue
        broken = next((k for k, v in clean.items() if _CONTROL.search(v)), None)
        if broken is not None:
            problems.append(
                RowProblem(
                    index,
                    f"column {broken!r} holds a line break or control character:"
                    " put the value on one line",
                )
            )
            continue
        phone = normalize_phone(clean.get("phone", ""))
        if phone is None:
            problems.append(
                RowProblem(
                    index,
                    f"phone {clean.get('phone', '')!r} is not an E.164 number like +14155550100",
                )
            )
            continue
        zone = clean.get("timeZone") or default_time_zone
        if not valid_time_zone(zone):
            problems.append(
                RowProblem(index, f"time zone {zone!r} is not an IANA name like America/New_York")
            )
            continue
        if contact_id in seen_ids:
            problems.append(RowProblem(index, f"duplicate id {contact_id!r}"))
            continue
        if phone in seen_phones:
            problems.append(
                RowProblem(index, f"number {phone} already listed on row {seen_phones[phone]}")
            )
            continue
        seen_ids.add(contact_id)
        seen_phones[phone] = index
        attributes = {k: v for k, v in clean.items() if k not in ("id", "phone", "timeZone") and k}
        contacts.append(Contact(contact_id, phone, zone, attributes))
    if not contacts and not problems:
        problems.append(RowProblem(1, "the list has no contacts"))
    return ContactList(tuple(contacts), tuple(problems))


def parse_do_not_call(text: str) -> tuple[frozenset[str], tuple[RowProblem, ...]]:
    """Numbers never to call, one a line (``#`` comments allowed), normalized to E.164."""
    numbers: set[str] = set()
    problems: list[RowProblem] = []
    for index, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        phone = normalize_phone(value)
        if phone is None:
            problems.append(RowProblem(index, f"{value!r} is not an E.164 number"))
        else:
            numbers.add(phone)
    return frozenset(numbers), tuple(problems)
