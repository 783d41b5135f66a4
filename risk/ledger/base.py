"""What every store of the ledger shares: the connection, its transaction, the clock, and small query helpers.

A store is one concern's tables (risk/ledger/runs.py, files.py, ...); each write joins the open transaction, or
is a transaction of its own when none is open. Stdlib only.
"""
from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator


def now() -> str:
    """UTC time in ISO 8601 with milliseconds (time, not datetime: one import less on the idle path)."""
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}+00:00"


class Transaction:
    """The transaction of one connection: what is written inside `with transaction():` commits when the block
    ends and rolls back when it raises. A block inside another joins it (only the outermost commits or rolls
    back). sqlite3 begins the transaction at the block's first write, so the reads before it take no snapshot."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.depth = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
            if self.depth == 1:
                self.db.commit()
        except BaseException:  # the body's exception, or a commit that failed: nothing of the block stays
            if self.depth == 1:
                self.db.rollback()
            raise
        finally:
            self.depth -= 1


class Store:
    """One concern's tables on the ledger's connection."""

    def __init__(self, db: sqlite3.Connection, transaction: Transaction) -> None:
        self.db = db
        self.transaction = transaction

    def _one(self, sql: str, *args: object) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()

    def _dicts(self, sql: str, *args: object) -> list[dict]:
        return [dict(row) for row in self.db.execute(sql, args).fetchall()]

    def _insert(self, sql: str, *args: object) -> int:
        with self.transaction():
            return self.db.execute(sql, args).lastrowid
