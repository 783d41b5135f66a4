"""The `deployments` table: each version made current, by a deploy or by a rollback with who and why, and the
run that made its diagnostics and report (a killed run leaves that unset, so the next tick makes them).

The idle tick reads the newest record to compare it with the `current` pointer. Stdlib only.
"""
from __future__ import annotations

from risk.ledger.base import Store, now


class Deployments(Store):
    """Versions made current, oldest first."""

    def record(self, run_id: int | None, version: int, model_sha256: str, score: float, action: str = "deploy",
               reason: str | None = None, actor: str | None = None) -> int:
        """A version made current: by a deploy, or by a rollback with who and why."""
        return self._insert(
            "INSERT INTO deployments (run_id, version, created_at, model_sha256, score, action, reason, actor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_id, version, now(), model_sha256, score, action, reason, actor,
        )

    def last_version(self) -> int | None:
        """The version the newest deployment record made current (cheap: the idle tick asks it)."""
        row = self._one("SELECT version FROM deployments ORDER BY id DESC LIMIT 1")
        return row[0] if row else None

    def last(self) -> dict | None:
        """The newest deployment record: id, version and the run that made its diagnostics and report, if one did."""
        row = self._one("SELECT id, version, followed_up_run FROM deployments ORDER BY id DESC LIMIT 1")
        return dict(row) if row else None

    def live_before(self, version: int) -> int | None:
        """The version that was current just before the newest activation of `version` (the movers' baseline:
        what the managers' list came from before), whatever its number; None when nothing was."""
        row = self._one("SELECT version FROM deployments WHERE version != ? AND id < (SELECT MAX(id) FROM deployments"
                        " WHERE version = ?) ORDER BY id DESC LIMIT 1", version, version)
        return row[0] if row else None

    def records(self) -> list[dict]:
        """Every deployment record, oldest first."""
        return self._dicts("SELECT * FROM deployments ORDER BY id")

    def record_follow_up(self, deployment_id: int, run_id: int) -> None:
        """The deployment's diagnostics, report and API calls are done (a killed run leaves this unset)."""
        with self.transaction():
            self.db.execute("UPDATE deployments SET followed_up_run = ? WHERE id = ?", (run_id, deployment_id))
