"""The ledger's writer: `Ledger(path)` creates or migrates the file, and `recorded(...)` records one stage run.

Writes of several records that must land together go in `with ledger.transaction():` (commit at the end,
rollback on an exception); a single write outside one is its own transaction. Stdlib only.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from risk.ledger.schema import migrate
from risk.ledger.stores import Stores


class Ledger(Stores):
    """The ledger open for writing (a pipeline stage or a script): migrated to this code's schema on opening."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        migrate(db, path)
        super().__init__(path, db)

    def __enter__(self) -> Ledger:
        return self

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Everything the stores write inside the block commits together when it ends, or not at all when it
        raises; a transaction inside another joins it."""
        return self._transaction()


@contextlib.contextmanager
def recorded(path: Path, stage: str, parent_run: int | None = None) -> Iterator[tuple[Ledger, int, dict]]:
    """Open the ledger and record one stage run; the caller fills `detail`, the outcome is set on exit."""
    with Ledger(path) as ledger:
        run_id = ledger.runs.start(stage, parent_run)
        detail: dict = {}
        try:
            yield ledger, run_id, detail
        except BaseException as exc:
            ledger.runs.end(run_id, "failed", {**detail, "error": f"{type(exc).__name__}: {exc}"})
            raise
        ledger.runs.end(run_id, "ok", detail)
