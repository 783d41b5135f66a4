"""The `contacts`, `contact_files` and `contact_files_seen` tables (issue 24): who was called, when and with what
result, append-only (a repeat of the same contact is counted, never written twice, never updated); and each CSV
of the contacts folder, recorded once by content, with the names and stats it was seen under. Stdlib only: the
idle tick asks `ContactFiles.seen`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from risk.ledger.base import Store, now

CHUNK = 500  # client ids per query (SQLite's limit on bound parameters)
FIELDS = ("corporation", "contacted_at", "result", "note", "source")


def _bound(stamp: str) -> str:
    """An ISO 8601 bound as the stored contacted_at text (UTC, whole seconds, cut down like the contacts: a call
    logged in the second a list was recorded counts for that list, since calls follow their list)."""
    from datetime import UTC, datetime  # not on the idle tick's path

    when = datetime.fromisoformat(stamp)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0).isoformat(timespec="seconds")


class Contacts(Store):
    """Recorded contacts: each (client, time, result) once."""

    def record(self, contacts: Iterable[tuple], source: str) -> dict[str, int]:
        """Append `contacts` ((corporation, contacted_at, result, note) tuples: risk.contacts.Contact) in one
        transaction; {"added": new ones, "repeated": ones already recorded (or twice in `contacts`)}."""
        added = repeated = 0
        stamp = now()
        with self.transaction():
            for corporation, contacted_at, result, note in contacts:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO contacts (corporation, contacted_at, result, note, source, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (corporation, contacted_at, result, note, source, stamp))
                added += cursor.rowcount
                repeated += 1 - cursor.rowcount
        return {"added": added, "repeated": repeated}

    def of_clients(self, ids: list[str], since_iso: str, until_iso: str | None = None) -> dict[str, list[dict]]:
        """Each client's contacts with since <= contacted_at < until (no end without `until_iso`), oldest first:
        {id: [{corporation, contacted_at, result, note, source}, ...]}, every id of `ids` a key (an empty list
        when it has none)."""
        since, until = _bound(since_iso), _bound(until_iso) if until_iso else None
        found: dict[str, list[dict]] = {name: [] for name in ids}
        names = list(found)
        for start in range(0, len(names), CHUNK):
            chunk = names[start:start + CHUNK]
            sql = (f"SELECT {', '.join(FIELDS)} FROM contacts WHERE corporation IN ({', '.join('?' * len(chunk))})"  # noqa: S608
                   " AND contacted_at >= ?" + (" AND contacted_at < ?" if until else "")
                   + " ORDER BY corporation, contacted_at, id")
            for row in self.db.execute(sql, (*chunk, since, *([until] if until else []))):
                found[row["corporation"]].append(dict(row))
        return found

    def latest(self, limit: int = 50) -> list[dict]:
        """The newest `limit` contacts recorded, newest first, with when each was recorded."""
        return self._dicts(f"SELECT id, {', '.join(FIELDS)}, recorded_at FROM contacts ORDER BY id DESC LIMIT ?",  # noqa: S608
                           limit)

    def count(self) -> int:
        return self._one("SELECT COUNT(*) FROM contacts")[0]


class ContactFiles(Store):
    """The contacts folder's CSVs: each content recorded once, and every (name, size, mtime) it was seen under."""

    def seen(self, name: str, size: int, mtime_ns: int) -> bool:
        """Whether a file with this name, size and mtime was read already (the idle tick's question)."""
        return self._one("SELECT 1 FROM contact_files_seen WHERE name = ? AND size = ? AND mtime_ns = ?",
                         name, size, mtime_ns) is not None

    def of_content(self, sha256: str) -> dict | None:
        """The record of the file with this content, if one was recorded."""
        row = self._one("SELECT * FROM contact_files WHERE sha256 = ?", sha256)
        return {**dict(row), "detail": json.loads(row["detail"])} if row else None

    def rejects_end(self) -> int | None:
        """The byte length of contacts_rejects.csv recorded with the newest file; None before any."""
        row = self._one("SELECT rejects_end FROM contact_files WHERE rejects_end IS NOT NULL ORDER BY id DESC LIMIT 1")
        return row[0] if row else None

    def record(self, run_id: int | None, name: str, sha256: str, counts: dict, set_aside: int, rejects_end: int | None,
               detail: dict) -> int:
        """A file read: its contacts `counts` ({"added", "repeated"}), lines set aside, and the byte length of
        contacts_rejects.csv after its lines (joins the transaction that recorded its contacts)."""
        return self._insert(
            "INSERT INTO contact_files (run_id, name, sha256, recorded_at, added, repeated, set_aside, rejects_end,"
            " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", run_id, name, sha256, now(), counts["added"],
            counts["repeated"], set_aside, rejects_end, json.dumps(detail))

    def note_seen(self, name: str, size: int, mtime_ns: int, sha256: str | None) -> None:
        """This name, size and mtime were read (content `sha256`; None: unreadable then)."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO contact_files_seen (name, size, mtime_ns, sha256, seen_at)"
                            " VALUES (?, ?, ?, ?, ?)", (name, size, mtime_ns, sha256, now()))

    def latest(self, limit: int = 20) -> list[dict]:
        """The newest `limit` files recorded, newest first, each with its detail parsed."""
        rows = self.db.execute("SELECT * FROM contact_files ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]
