"""The `decisions` and `intents` tables: each drift decision with its evidence (JSON), and the intent a decision
that deploys writes before `current` switches, settled by its record in the same transaction.

A decision marks the files it covered as decided (or deferred) in the transaction that records it. Stdlib only.
"""
from __future__ import annotations

import json
import sqlite3

from risk.ledger.base import Store, Transaction, now


class Intents(Store):
    """A decision that deploys, written before the switch; its record settles it, or the next run abandons it."""

    def record(self, run_id: int, from_version: int | None, verdict: str, evidence: dict,
               file_ids: list[int]) -> int:
        return self._insert(
            "INSERT INTO intents (run_id, created_at, from_version, verdict, evidence, file_ids)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            run_id, now(), from_version, verdict, json.dumps(evidence, default=str), json.dumps(file_ids),
        )

    def unsettled(self) -> dict | None:
        """The newest intent no decision record settled: its run was killed (or failed) after writing it."""
        row = self._one("SELECT * FROM intents WHERE settled_run IS NULL ORDER BY id DESC LIMIT 1")
        if row is None:
            return None
        return {**dict(row), "evidence": json.loads(row["evidence"]), "file_ids": json.loads(row["file_ids"])}

    def settle(self, intent_id: int, run_id: int, outcome: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE intents SET settled_run = ?, outcome = ? WHERE id = ?",
                            (run_id, outcome, intent_id))

    def abandon(self, intent_id: int, run_id: int) -> None:
        """The intent's deploy never made a version current: its files stay undecided for the next decision."""
        self.settle(intent_id, run_id, "abandoned")


class Decisions(Store):
    """Drift decisions: recorded (files decided) or deferred (files kept for the next decision), read newest first."""

    def __init__(self, db: sqlite3.Connection, transaction: Transaction, intents: Intents) -> None:
        super().__init__(db, transaction)
        self.intents = intents

    def record(self, run_id: int, verdict: str, action: str, evidence: dict, file_ids: list[int],
               intent_id: int | None = None, settled_by: int | None = None) -> int:
        """Record a decision and mark the files it covered as decided (and its intent settled), in one transaction."""
        with self.transaction():
            self.db.executemany("UPDATE files SET decided_run = ? WHERE id = ?", [(run_id, i) for i in file_ids])
            if intent_id is not None:
                self.intents.settle(intent_id, settled_by or run_id, "recorded")
            return self._add(run_id, verdict, action, evidence)

    def defer(self, run_id: int, verdict: str, action: str, evidence: dict, file_ids: list[int]) -> int:
        """Record an inconclusive decision and mark its files deferred (still undecided), in one transaction.

        Deferred files join the next decision, which runs when new data arrives; the idle tick skips them.
        """
        with self.transaction():
            self.db.executemany("UPDATE files SET deferred_run = ? WHERE id = ?", [(run_id, i) for i in file_ids])
            return self._add(run_id, verdict, action, evidence)

    def _add(self, run_id: int, verdict: str, action: str, evidence: dict) -> int:
        return self.db.execute(
            "INSERT INTO decisions (run_id, created_at, verdict, action, evidence) VALUES (?, ?, ?, ?, ?)",
            (run_id, now(), verdict, action, json.dumps(evidence, default=str)),
        ).lastrowid

    def latest(self, limit: int = 20) -> list[dict]:
        """The newest `limit` decisions, newest first, each with its evidence parsed."""
        rows = self.db.execute("SELECT * FROM decisions ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "evidence": json.loads(row["evidence"])} for row in rows]

    def of_run(self, run_id: int) -> dict | None:
        """The newest decision recorded by run `run_id` (the pipeline run that deployed a version): one look-up in
        the index, however many decisions came after it."""
        row = self._one("SELECT * FROM decisions WHERE run_id = ? ORDER BY id DESC LIMIT 1", run_id)
        return {**dict(row), "evidence": json.loads(row["evidence"])} if row else None

    def count_by_verdict(self) -> dict[str, int]:
        """{verdict: how many decisions gave it} (the metrics' counter)."""
        return dict(self.db.execute("SELECT verdict, COUNT(*) FROM decisions GROUP BY verdict").fetchall())
