"""The `diagnostics` and `package_versions` tables (issue 8): each diagnostics run's report with its timings, and
the cache of the package index's latest versions with when each was checked. Stdlib only.
"""
from __future__ import annotations

import json

from risk.ledger.base import Store, now


class Diagnostics(Store):
    """Diagnostics reports over time, and the cached latest versions of the pinned packages."""

    def record(self, run_id: int | None, report: dict) -> int:
        timings = report.get("execution_time") or {}
        return self._insert(
            "INSERT INTO diagnostics (run_id, created_at, model_version, ingestion_seconds, training_seconds,"
            " repeats, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            run_id, now(), report.get("model_version"), timings.get("ingestion_seconds"),
            timings.get("training_seconds"), timings.get("repeats"), json.dumps(report, default=str),
        )

    def latest(self, limit: int = 50) -> list[dict]:
        """The latest `limit` diagnostics, oldest first, each with its full report parsed."""
        rows = self.db.execute("SELECT * FROM diagnostics ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in reversed(rows)]

    def last_report(self) -> dict | None:
        """The newest diagnostics run's report with its time (`recorded_at`); None before one."""
        row = self._one("SELECT created_at, detail FROM diagnostics ORDER BY id DESC LIMIT 1")
        return {**json.loads(row[1]), "recorded_at": row[0]} if row else None

    def package_versions(self) -> dict[str, tuple[str, float]]:
        """{name: (latest version or "unknown", checked at, epoch seconds)}."""
        rows = self.db.execute("SELECT name, latest, checked_at FROM package_versions").fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def store_package_versions(self, found: dict[str, tuple[str, float]]) -> None:
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO package_versions (name, latest, checked_at) VALUES (?, ?, ?)",
                                [(name, latest, at) for name, (latest, at) in found.items()])
