"""The `runs` table: every stage run with its parent, start, end, outcome and detail (JSON).

The idle tick's heartbeat is one row written without fsync. Stdlib only.
"""
from __future__ import annotations

import json

from risk.ledger.base import Store, now


class Runs(Store):
    """Stage runs: started, ended with an outcome, and read back (by id, by parent, by stage)."""

    def start(self, stage: str, parent_id: int | None = None) -> int:
        return self._insert("INSERT INTO runs (parent_id, stage, started_at) VALUES (?, ?, ?)", parent_id, stage, now())

    def record_idle(self, stage: str, detail: dict) -> int:
        """A run that found nothing to do: one row, one transaction, not fsynced.

        WAL with synchronous=NORMAL stays consistent; a power cut may lose this heartbeat, nothing else.
        """
        self.db.execute("PRAGMA synchronous=NORMAL")
        stamp = now()
        return self._insert(
            "INSERT INTO runs (stage, started_at, ended_at, outcome, detail) VALUES (?, ?, ?, 'idle', ?)",
            stage, stamp, stamp, json.dumps(detail),
        )

    def end(self, run_id: int, outcome: str, detail: dict | None = None) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET ended_at = ?, outcome = ?, detail = ? WHERE id = ?",
                (now(), outcome, json.dumps(detail or {}, default=str), run_id),
            )

    def get(self, run_id: int) -> dict | None:
        row = self._one("SELECT * FROM runs WHERE id = ?", run_id)
        return dict(row) if row else None

    def latest(self, stage: str, ended: bool = False) -> dict | None:
        """The newest run of `stage` (only among those that ended, with `ended`); its detail is JSON text."""
        where = " AND ended_at IS NOT NULL" if ended else ""
        row = self._one(f"SELECT * FROM runs WHERE stage = ?{where} ORDER BY id DESC LIMIT 1", stage)  # noqa: S608
        return dict(row) if row else None

    def child(self, parent_id: int, stage: str) -> int | None:
        """The newest run of `stage` started by run `parent_id`."""
        row = self._one("SELECT id FROM runs WHERE parent_id = ? AND stage = ? ORDER BY id DESC LIMIT 1",
                        parent_id, stage)
        return row[0] if row else None

    def ingested_before(self, run_id: int) -> bool:
        """Whether an ingestion run started before `run_id` (a killed one counts): else no byte of the
        appended files can be this ledger's to cut."""
        return self._one("SELECT 1 FROM runs WHERE stage = 'ingestion' AND id < ? LIMIT 1", run_id) is not None

    def stage_seconds(self, stages: tuple[str, ...], limit: int = 10) -> dict[str, list[float]]:
        """{stage: seconds of its latest `limit` successful runs, oldest first}."""
        from datetime import datetime  # not on the idle tick's path

        found: dict[str, list[float]] = {}
        for stage in stages:
            rows = self.db.execute("SELECT started_at, ended_at FROM runs WHERE stage = ? AND outcome = 'ok' AND"
                                   " ended_at IS NOT NULL ORDER BY id DESC LIMIT ?", (stage, limit)).fetchall()
            found[stage] = [(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
                            for start, end in reversed(rows)]
        return found
