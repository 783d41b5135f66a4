"""The contacts contract: who was called, when, and what happened, checked at the boundary (the API's JSON or CSV
body, a CSV dropped in the contacts folder). Errors name the record or line, the field and what was expected.

Pure functions; the ledger stores the contacts (append-only) and the caller checks that each client is known.
"""
from __future__ import annotations

import csv
import io
from collections import namedtuple
from datetime import UTC, datetime, timedelta

from risk.errors import ContractError

RESULTS = ("reached", "not_reached", "offer_accepted", "offer_declined")
FIELDS = ("corporation", "contacted_at", "result", "note")
REQUIRED = FIELDS[:3]
MAX_NOTE = 500  # characters
MAX_ID = 200  # characters of a client id
MAX_CONTACTS = 10_000  # per request or file
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SLACK = timedelta(days=1)  # a contact dated up to a day ahead is a time zone, not a typo


class Contact(namedtuple("_Contact", "corporation contacted_at result note")):
    """One recorded call: the client's id, when (ISO 8601, UTC), one of RESULTS, an optional note."""

    __slots__ = ()

    def key(self) -> tuple[str, str, str]:
        """What makes a contact the same contact: client, time and result (a repeat is recorded once)."""
        return self.corporation, self.contacted_at, self.result


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContractError(f"field {field!r} must be non-empty text, got {value!r}")
    if len(value) > limit:
        raise ContractError(f"field {field!r} must be at most {limit} characters, got {len(value)}")
    return value.strip()


def _when(value: object, now: datetime) -> str:
    """An ISO 8601 date or date-time (no zone: UTC) between 2000 and a day from now, as UTC ISO text. A date
    alone means the end of that day (23:59:59 UTC): a call logged by its date counts for the list in force that
    evening, so a call made on the morning a list was recorded is not taken for one before it."""
    if not isinstance(value, str):
        raise ContractError(f"field 'contacted_at' must be an ISO 8601 date or date-time text, got {value!r}")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ContractError(f"field 'contacted_at' must be an ISO 8601 date or date-time such as 2026-12-01 or"
                            f" 2026-12-01T14:30:00Z, got {value!r}") from None
    if len(value.strip()) <= len("2026-12-01"):  # a date alone
        when = when.replace(hour=23, minute=59, second=59)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not EARLIEST <= when <= now + CLOCK_SLACK:
        raise ContractError(f"field 'contacted_at' must lie between 2000-01-01 and now, got {value!r}")
    return when.isoformat(timespec="seconds")


def contact_of(record: object, now: datetime) -> Contact:
    """One record (a dict of FIELDS) checked; unknown fields are refused, naming them."""
    if not isinstance(record, dict):
        raise ContractError(f"a contact must be an object with fields {list(FIELDS)}, got {type(record).__name__}")
    extra = sorted(set(record) - set(FIELDS))
    if extra:
        raise ContractError(f"unknown field(s) {extra}: a contact has {list(FIELDS)}")
    missing = [field for field in REQUIRED if record.get(field) in (None, "")]
    if missing:
        raise ContractError(f"missing field(s) {missing}: a contact needs {list(REQUIRED)}")
    result = record["result"]
    if result not in RESULTS:
        raise ContractError(f"field 'result' must be one of {list(RESULTS)}, got {result!r}")
    note = record.get("note")
    note = None if note in (None, "") else _text(note, "note", MAX_NOTE)
    return Contact(_text(record["corporation"], "corporation", MAX_ID), _when(record["contacted_at"], now),
                   result, note)


def _bounded(count: int, source: str) -> None:
    if count > MAX_CONTACTS:
        raise ContractError(f"{source}: at most {MAX_CONTACTS} contacts at once, got {count}")


def from_records(records: object, now: datetime, source: str = "request") -> list[Contact]:
    """A JSON list of contacts, all or nothing: the first bad one is named by its index and field."""
    if not isinstance(records, list) or not records:
        raise ContractError(f"{source}: 'contacts' must be a non-empty list of contact objects")
    _bounded(len(records), source)
    checked = []
    for index, record in enumerate(records):
        try:
            checked.append(contact_of(record, now))
        except ContractError as exc:
            raise ContractError(f"{source}: contact {index}: {exc}") from None
    return checked


def _rows(raw: bytes, source: str) -> csv.DictReader:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContractError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [field for field in REQUIRED if field not in header]
    if missing:
        raise ContractError(f"{source}: header must name {list(REQUIRED)} (and optionally 'note'); missing {missing}")
    reader.fieldnames = header
    return reader


def from_csv(raw: bytes, source: str, now: datetime) -> tuple[list[Contact], list[dict]]:
    """A contacts CSV: the good contacts, and each bad line set aside with its line number (the header is line 1)
    and reason. Columns other than FIELDS are dropped (as the data contract drops extra columns); a header
    without the required ones, or a file that is not UTF-8, refuses the whole file."""
    good, bad = [], []
    for number, row in enumerate(_rows(raw, source), start=2):
        if None in row:
            bad.append({"line": number, "reason": f"more cells than the header's {len(row) - 1} columns"})
            continue
        try:
            good.append(contact_of({k: v for k, v in row.items() if k in FIELDS}, now))
        except ContractError as exc:
            bad.append({"line": number, "reason": str(exc)})
    _bounded(len(good) + len(bad), source)
    return good, bad


def strict(found: tuple[list[Contact], list[dict]], source: str) -> list[Contact]:
    """All or nothing (the API): the first set-aside line refuses the whole body."""
    good, bad = found
    if bad:
        raise ContractError(f"{source}: line {bad[0]['line']}: {bad[0]['reason']}"
                            + (f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""))
    if not good:
        raise ContractError(f"{source}: no contacts: a header and at least one line are needed")
    return good


def unknown_clients(contacts: list[Contact], known: set[str]) -> list[str]:
    """Client ids no list or history knows, in order of first appearance."""
    return list(dict.fromkeys(c.corporation for c in contacts if c.corporation not in known))
