"""The `call_lists` table (issue 14): each recorded call list as it was, with the history's row count and byte
length then, so that its outcome can be measured when later data arrives. Stdlib only.
"""
from __future__ import annotations

import json

from risk.ledger.base import Store, now


class CallLists(Store):
    """Recorded call lists, each with its clients (JSON)."""

    def record(self, run_id: int | None, model_version: int, capacity: int, data_rows: int, data_end: int,
               clients: list[dict]) -> int:
        return self._insert("INSERT INTO call_lists (run_id, created_at, model_version, capacity, data_rows, data_end,"
                            " clients) VALUES (?, ?, ?, ?, ?, ?, ?)", run_id, now(), model_version, capacity,
                            data_rows, data_end, json.dumps(clients))

    def latest(self, limit: int = 12) -> list[dict]:
        """The newest `limit` recorded lists, newest first, each with its clients parsed."""
        rows = self.db.execute("SELECT * FROM call_lists ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "clients": json.loads(row["clients"])} for row in rows]

    def listed_by_row_count(self) -> dict[int, set[str]]:
        """For each history row count (`data_rows`) at which lists were recorded, the clients listed then (every
        list's). Keyed by rows, not by the byte offset `data_end`."""
        listed: dict[int, set[str]] = {}
        for data_rows, clients in self.db.execute("SELECT data_rows, clients FROM call_lists"):
            listed.setdefault(int(data_rows), set()).update(c["corporation"] for c in json.loads(clients))
        return listed
