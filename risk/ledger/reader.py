"""The ledger read-only, for the API, its metrics and GET requests: SQLite mode=ro, so a reader never creates,
writes or migrates the file. `LedgerReader(path)` refuses another schema (OldLedger, a 503 naming the cure);
`read_once(path, ask, default)` answers from a ledger of any schema. Stdlib only.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from risk.ledger.schema import OldLedger, require_current
from risk.ledger.stores import Stores

TYPE_CHECKING = False  # typing itself is not imported: the idle cron tick reads the ledger through this module
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the ledger (SQLite mode=ro), for the API: a GET never writes or migrates
    it. Reading a WAL database maps its -shm index (SQLite creates it, empty, if absent); no data is written."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)


class LedgerReader(Stores):
    """The ledger for reading: the stores' reads on a read-only connection (a write raises "readonly database"),
    and the answers the API and the metrics ask. With `any_schema` the schema is not checked (see read_once)."""

    def __init__(self, path: Path, any_schema: bool = False) -> None:
        db = read_only_connection(path)
        db.row_factory = sqlite3.Row
        if not any_schema:
            try:
                require_current(db, path)
            except OldLedger:
                db.close()
                raise
        super().__init__(path, db)

    def __enter__(self) -> LedgerReader:
        return self

    def committed_end(self) -> int | None:
        """The byte length of finaldata.csv the ledger has committed (None before any ingestion)."""
        return self.files.committed_ends()[0]

    def committed_point(self) -> tuple[int, int] | None:
        """(the byte length of finaldata.csv, the observations) the ledger has committed; None before any data."""
        return self.files.committed_point()

    def stage_seconds(self, stages: tuple[str, ...], limit: int = 10) -> dict[str, list[float]]:
        """{stage: seconds of its latest `limit` successful runs, oldest first}."""
        return self.runs.stage_seconds(stages, limit)

    def package_versions(self) -> dict[str, tuple[str, float]]:
        """The cached latest versions: {name: (latest or "unknown", checked at, epoch seconds)}."""
        return self.diagnostics.package_versions()

    def last_diagnostics(self) -> dict | None:
        """The newest diagnostics run's report with its time (`recorded_at`); None before one."""
        return self.diagnostics.last_report()

    def last_pipeline_run(self) -> dict | None:
        """The newest fullprocess run that ended (its outcome and `ended_at`); None before one."""
        return self.runs.latest("fullprocess", ended=True)

    def decision_counts(self) -> dict[str, int]:
        """{verdict: how many drift decisions gave it}."""
        return self.decisions.count_by_verdict()

    def of_clients(self, ids: list[str], since_iso: str, until_iso: str | None = None) -> dict[str, list[dict]]:
        """Each client's contacts in [since, until), oldest first (`contacts.of_clients`)."""
        return self.contacts.of_clients(ids, since_iso, until_iso)

    def latest_contacts(self, limit: int) -> list[dict]:
        """The newest `limit` contacts, newest first."""
        return self.contacts.latest(limit)

    def latest_call_lists(self, limit: int) -> list[dict]:
        """The newest `limit` recorded call lists, newest first, each with its holdout (`call_lists.latest`)."""
        return self.call_lists.latest(limit)


def read_once(path: Path, ask: Callable[[LedgerReader], T], default: T) -> T:
    """`ask(reader)` on the ledger at `path` whatever its schema, then closed (for GETs, which never migrate):
    `default` before the first run (no file), or when the file cannot be opened or predates the table asked (its
    next writer migrates it)."""
    if not path.is_file():
        return default
    try:
        with LedgerReader(path, any_schema=True) as reader:
            return ask(reader)
    except sqlite3.OperationalError:
        return default
