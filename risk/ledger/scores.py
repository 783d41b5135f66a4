"""The `scores` table: each F1 a model file scored on a dataset (the test data, or the new rows a decision saw).

Read by deployment (the score of the model it deploys) and by the history rules of the drift decision. Stdlib only.
"""
from __future__ import annotations

from risk.ledger.base import Store, now


class Scores(Store):
    """F1 scores by model file (sha256) and dataset."""

    def record(self, run_id: int | None, model_sha256: str, dataset: str, f1: float, n: int) -> int:
        return self._insert(
            "INSERT INTO scores (run_id, model_sha256, dataset, f1, n, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            run_id, model_sha256, dataset, f1, n, now(),
        )

    def latest_f1(self, model_sha256: str, dataset: str = "testdata") -> float | None:
        """The latest recorded score of this model file on `dataset`, if any."""
        row = self._one("SELECT f1 FROM scores WHERE model_sha256 = ? AND dataset = ? ORDER BY id DESC LIMIT 1",
                        model_sha256, dataset)
        return row[0] if row else None

    def f1s_of(self, model_sha256: str) -> list[float]:
        """Every recorded score of this model file, oldest first (the past scores of the history rules)."""
        rows = self.db.execute("SELECT f1 FROM scores WHERE model_sha256 = ? ORDER BY id", (model_sha256,))
        return [row[0] for row in rows.fetchall()]

    def records(self) -> list[dict]:
        """Every score, oldest first."""
        return self._dicts("SELECT * FROM scores ORDER BY id")
