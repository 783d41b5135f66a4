"""Contacts into the ledger: the body of `POST /risk/contacts` (all or nothing) and the CSVs dropped in the
contacts folder (each new content once; bad lines and unknown clients set aside with their line and reason).

Reads the recorded call lists and the prepared state (who is a known client); writes the ledger's `contacts`,
`contact_files` and `contact_files_seen`, and appends set-aside lines to `contacts_rejects.csv` in the output
folder (synced before the ledger records them; a killed run's tail is cut by the next). A file in the contacts
folder is never modified or deleted. The idle tick asks `new_files` (stdlib: a stat and a look-up per file).
Run by the cron tick (risk/pipeline.py) or by hand: python ingestion.py --contacts.
"""
from __future__ import annotations

import logging
import os
from collections import namedtuple
from collections.abc import Container
from pathlib import Path

from risk import catalog
from risk.config import Config
from risk.ledger import Ledger, LedgerReader

logger = logging.getLogger(__name__)
API_SOURCE = "api"
REJECTS_HEADER = b"file,line,reason\n"
SHOWN_SET_ASIDE = 200  # set-aside lines kept in a file's ledger detail; contacts_rejects.csv has every one
UNKNOWN = "unknown client {!r}: in no recorded call list and not in the ingested data"

FolderFile = namedtuple("FolderFile", "name path size mtime_ns")


# ---- the contacts folder: what is new (stdlib, the idle tick) ------------------------------------------
def folder_files(folder: Path) -> list[FolderFile]:
    """Every regular file named *.csv in `folder` (not hidden, not recursive), sorted by name; none without it."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        found = [FolderFile(e.name, Path(e.path), *_stat(e)) for e in entries
                 if e.name.lower().endswith(".csv") and not e.name.startswith(".") and e.is_file()]
    return sorted(found)


def _stat(entry: os.DirEntry) -> tuple[int, int]:
    stat = entry.stat()
    return stat.st_size, stat.st_mtime_ns


def new_files(config: Config, ledger: Ledger) -> list[FolderFile]:
    """The contacts folder's CSVs whose name, size and mtime the ledger has not seen (their content is hashed only
    when they are read: the idle tick reads no file)."""
    seen = ledger.contact_files.seen
    return [f for f in folder_files(config.contacts_folder) if not seen(f.name, f.size, f.mtime_ns)]


# ---- who is a known client -----------------------------------------------------------------------------
class KnownClients:
    """Every client a recorded call list named and every client the ingested data names (current or gone: a
    client called and then lost is still known), asked one id at a time (`in`): the prepared state is looked up,
    not copied, so a request costs its contacts, not the client base."""

    def __init__(self, lists_by_rows: dict[int, set[str]], state) -> None:  # state: prepared.State | None
        self.listed = set().union(*lists_by_rows.values()) if lists_by_rows else set()
        self.state = state

    def __contains__(self, name: object) -> bool:
        from risk import prepared

        if name in self.listed:
            return True
        return self.state is not None and isinstance(name, str) and bool(prepared.knows(self.state, [name])[0])


def known_clients(lists_by_rows: dict[int, set[str]], state) -> KnownClients:  # state: prepared.State | None
    return KnownClients(lists_by_rows, state)


def check_known(contacts: list, known: Container[str], source: str, first_line: int | None = None) -> None:
    """ContractError naming the first contact (by its index, or its line from `first_line`) whose client is unknown,
    and how many are."""
    from risk import contacts as contract_of_contacts
    from risk.errors import ContractError

    unknown = contract_of_contacts.unknown_clients(contacts, known)
    if unknown:
        index = next(i for i, c in enumerate(contacts) if c.corporation == unknown[0])
        where = f"contact {index}" if first_line is None else f"line {first_line + index}"
        more = f" (and {len(unknown) - 1} more unknown clients)" if len(unknown) > 1 else ""
        raise ContractError(f"{source}: {where}: field 'corporation': {UNKNOWN.format(unknown[0])}{more}")


# ---- the API: one request, all or nothing --------------------------------------------------------------
def contacts_of_body(mimetype: str, body: bytes) -> tuple[list, int | None]:
    """The contacts of a POST body (JSON {"contacts": [...]} or a CSV) and the line of the first (None: JSON),
    checked against the contract; ContractError (422) or ApiError (400, 415) naming the record and field."""
    import json
    from datetime import UTC, datetime

    from risk import contacts
    from risk.errors import ApiError

    now = datetime.now(UTC)
    if mimetype == "text/csv":
        return contacts.strict(contacts.from_csv(body, "request", now), "request"), 2
    if mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", f"send application/json ({{\"contacts\": [...]}}) or text/csv,"
                       f" got {mimetype or 'no Content-Type'!r}")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or set(document) != {"contacts"}:
        raise ApiError(400, "bad_request", 'expected a JSON object with one key, "contacts": a list of contacts')
    return contacts.from_records(document["contacts"], now, "request"), None


def record_request(config: Config, contacts: list, first_line: int | None,
                   source: str = API_SOURCE) -> dict[str, int]:
    """Record one request's checked contacts, all or nothing: every client must be known (a 422 naming the first
    unknown one, nothing written). {"added": n, "repeated": m}. Reads the ledger read-only first, so a ledger of
    another schema is a 503 and never migrated by a request. `source` is recorded with each contact: "api", or
    "dashboard" for the dashboard's form (risk/callform.py)."""
    from risk import prepared
    from risk.errors import MissingInputError

    if not config.ledger_path.is_file():
        raise MissingInputError("no data ingested yet: no client is known (run fullprocess.py first)")
    with LedgerReader(config.ledger_path) as reader:
        lists = reader.call_lists.listed_by_row_count()
    check_known(contacts, known_clients(lists, prepared.as_of_committed(config)), "request", first_line)
    with Ledger(config.ledger_path) as ledger:
        counts = ledger.contacts.record(contacts, source)
    logger.info("contacts: %d added, %d repeated, from the %s", counts["added"], counts["repeated"], source)
    return counts


# ---- the contacts folder: each new content once ----------------------------------------------------------
def rejects_path(config: Config) -> Path:
    return config.output_folder / catalog.CONTACTS_REJECTS


def read_folder(config: Config, ledger: Ledger, run_id: int | None = None) -> dict:
    """Read the contacts folder's new files (risk/pipeline.py under the ingestion lock, or ingestion.py
    --contacts): each new content's good lines recorded as contacts, its bad lines and unknown clients set aside
    (contacts_rejects.csv and the file's ledger record); a content already recorded is counted once."""
    files = new_files(config, ledger)
    if not files:
        return {"files": []}
    from risk import prepared, store

    known = known_clients(ledger.call_lists.listed_by_row_count(), prepared.advance(config, prepared.committed(ledger)))
    rejects = store.open_at(rejects_path(config), REJECTS_HEADER, ledger.contact_files.rejects_end())
    try:
        outcomes = [take_file(ledger, run_id, entry, known, rejects) for entry in files]
    finally:
        rejects.close()
    return {"files": outcomes, "added": sum(o.get("added", 0) for o in outcomes),
            "repeated": sum(o.get("repeated", 0) for o in outcomes),
            "set_aside": sum(o.get("set_aside", 0) for o in outcomes)}


def take_file(ledger: Ledger, run_id: int | None, entry: FolderFile, known: Container[str], rejects) -> dict:
    """One file of the folder: read once, hashed, recorded (or counted as the same content as one recorded)."""
    import hashlib

    try:
        raw = entry.path.read_bytes()
    except OSError as exc:
        logger.warning("contacts: %s: unreadable (%s); read again when it changes", entry.name, exc.strerror)
        ledger.contact_files.note_seen(entry.name, entry.size, entry.mtime_ns, None)
        return {"name": entry.name, "status": "unreadable", "reason": exc.strerror}
    sha = hashlib.sha256(raw).hexdigest()
    same = ledger.contact_files.of_content(sha)
    if same is not None:
        ledger.contact_files.note_seen(entry.name, entry.size, entry.mtime_ns, sha)
        logger.info("contacts: %s: the same content as %s, recorded before; counted once", entry.name, same["name"])
        return {"name": entry.name, "status": "duplicate", "same_as": same["name"]}
    good, bad = checked_lines(raw, entry.name, known)
    return record_file(ledger, run_id, entry, sha, good, bad, rejects)


def checked_lines(raw: bytes, name: str, known: Container[str]) -> tuple[list, list[dict]]:
    """The file's contacts of known clients, and every other line with its line number and reason (a file the
    contract refuses whole, not UTF-8 or without the required header, is one line None)."""
    from datetime import UTC, datetime

    from risk import contacts
    from risk.errors import ContractError

    try:
        good, bad = contacts.from_csv(raw, name, datetime.now(UTC))
    except ContractError as exc:
        return [], [{"line": None, "reason": str(exc)}]
    taken = sorted(set(range(2, 2 + len(good) + len(bad))) - {b["line"] for b in bad})  # the good lines' numbers
    kept = []
    for line, contact in zip(taken, good, strict=True):
        if contact.corporation in known:
            kept.append(contact)
        else:
            bad.append({"line": line, "reason": f"field 'corporation': {UNKNOWN.format(contact.corporation)}"})
    return kept, sorted(bad, key=lambda b: b["line"])


def record_file(ledger: Ledger, run_id: int | None, entry: FolderFile, sha: str, good: list, bad: list[dict],
                rejects) -> dict:
    """The set-aside lines appended to contacts_rejects.csv and synced, then the contacts and the file's record
    in one transaction (a crash in between leaves a tail the next run cuts)."""
    from risk import store

    start = rejects.tell()
    try:
        with ledger.transaction():
            rejects.write(store.csv_lines([(entry.name, b["line"] if b["line"] is not None else "", b["reason"])
                                           for b in bad]))
            rejects.flush()
            os.fsync(rejects.fileno())
            counts = ledger.contacts.record(good, entry.name)
            detail = {"set_aside": bad[:SHOWN_SET_ASIDE], "more_set_aside": max(len(bad) - SHOWN_SET_ASIDE, 0)}
            ledger.contact_files.record(run_id, entry.name, sha, counts, len(bad), rejects.tell(), detail)
            ledger.contact_files.note_seen(entry.name, entry.size, entry.mtime_ns, sha)
    except BaseException:
        rejects.truncate(start)
        rejects.seek(start)
        raise
    logger.info("contacts: %s: %d added, %d repeated, %d line(s) set aside (see %s)", entry.name, counts["added"],
                counts["repeated"], len(bad), catalog.CONTACTS_REJECTS)
    return {"name": entry.name, "status": "recorded", **counts, "set_aside": len(bad)}


def run_contacts(config: Config, parent_run: int | None = None) -> dict:
    """`python ingestion.py --contacts`: read the contacts folder's new files now, under the ingestion lock (the
    cron tick reads them under the same lock)."""
    from risk.errors import BusyError
    from risk.files import single_flight
    from risk.ledger import recorded

    with single_flight(config.output_folder / catalog.INGESTION_LOCK) as mine:
        if not mine:
            raise BusyError(f"{config.output_folder / catalog.INGESTION_LOCK}: another ingestion is running")
        with recorded(config.ledger_path, "contacts", parent_run) as (ledger, run_id, detail):
            detail.update(read_folder(config, ledger, run_id))
    logger.info("contacts: %d new file(s) in %s", len(detail["files"]), config.contacts_folder)
    return dict(detail)
