"""The `call_lists` table (issue 14): each recorded call list as it was, with the history's row count and byte
length then, so that its outcome can be measured when later data arrives; since migration 9 (issue 24) also its
random holdout: the seed and share of the draw, each client's group ("call" or "control") and the expected hit
rates of the groups. A list recorded before reads as all "call" with holdout_share 0. Stdlib only.
"""
from __future__ import annotations

import json

from risk.ledger.base import Store, now

NO_EXPECTED = {"call": None, "control": None, "all": None}


def _parsed(row) -> dict:  # row: sqlite3.Row of call_lists
    """A recorded list as its readers take it: clients parsed, each with its group, and the holdout's fields."""
    record = dict(row)
    clients = [{**client, "group": client.get("group", "call")} for client in json.loads(record["clients"])]
    expected = json.loads(record["expected"]) if record["expected"] else dict(NO_EXPECTED)
    return {**record, "clients": clients, "holdout_share": record["holdout_share"] or 0.0, "expected": expected}


class CallLists(Store):
    """Recorded call lists, each with its clients (JSON) and its holdout."""

    def record(self, run_id: int | None, model_version: int, capacity: int, data_rows: int, data_end: int,
               clients: list[dict], holdout_seed: int | None = None, holdout_share: float = 0.0,
               expected: dict | None = None) -> int:
        """A list: its clients (each with rank, corporation, probability, reasons and group), the seed and share
        of its holdout draw, and the expected hit rate of the call group, the control group and the whole list."""
        return self._insert("INSERT INTO call_lists (run_id, created_at, model_version, capacity, data_rows, data_end,"
                            " clients, holdout_seed, holdout_share, expected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            run_id, now(), model_version, capacity, data_rows, data_end, json.dumps(clients),
                            holdout_seed, holdout_share, json.dumps(expected or NO_EXPECTED))

    def latest(self, limit: int = 12) -> list[dict]:
        """The newest `limit` recorded lists, newest first: id, created_at, model_version, capacity, data_rows,
        data_end, clients (rank, corporation, probability, reasons, group), holdout_seed, holdout_share and
        expected ({"call", "control", "all"})."""
        rows = self.db.execute("SELECT * FROM call_lists ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_parsed(row) for row in rows]

    def last_settings(self) -> tuple[int, float] | None:
        """(capacity, holdout_share) of the newest list (cheap: the idle tick compares them with the config)."""
        row = self._one("SELECT capacity, holdout_share FROM call_lists ORDER BY id DESC LIMIT 1")
        return (row[0], row[1] or 0.0) if row else None

    def listed_by_row_count(self) -> dict[int, set[str]]:
        """For each history row count (`data_rows`) at which lists were recorded, the clients listed then (every
        list's, both groups). Keyed by rows, not by the byte offset `data_end`."""
        listed: dict[int, set[str]] = {}
        for data_rows, clients in self.db.execute("SELECT data_rows, clients FROM call_lists"):
            listed.setdefault(int(data_rows), set()).update(c["corporation"] for c in json.loads(clients))
        return listed
