"""The drift decision records in the ledger, as JSON-ready dicts for the API and as one readable line.

`decisions(ledger, limit)` (newest first) and `latest_decision(ledger)` serve GET /decisions and
GET /decisions/latest. Stdlib only; reads the ledger, never writes it.
"""
from __future__ import annotations

from risk.ledger import Ledger, LedgerReader

MAX_LIMIT = 1000


def summary(record: dict) -> str:
    """One line a person can read: when, verdict, method, why, on what, and what was done."""
    evidence = record["evidence"]
    files = evidence.get("files") or []
    rows = evidence.get("new_rows")
    method = evidence.get("method", "")
    scope = f"{rows} new row(s) from {len(files)} file(s)" if rows is not None else f"{len(files)} file(s)"
    reason = evidence.get("reason") or ""
    by = f" by {method}" if method else ""
    because = f": {reason}" if reason else ""
    return f"{record['created_at']} {record['verdict']}{by} on {scope}{because} -> {record['action']}"


def as_json(record: dict) -> dict:
    """A ledger decision row as the API returns it (evidence already parsed by the ledger)."""
    evidence = record["evidence"]
    return {"id": record["id"], "run_id": record["run_id"], "created_at": record["created_at"],
            "verdict": record["verdict"], "action": record["action"], "method": evidence.get("method"),
            "summary": summary(record), "evidence": evidence}


def check_limit(limit: object) -> int:
    """A limit between 1 and MAX_LIMIT; ValueError naming what was expected and what came."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def decisions(ledger: Ledger | LedgerReader, limit: int = 20) -> list[dict]:
    """The latest `limit` decision records, newest first."""
    return [as_json(record) for record in ledger.decisions.latest(check_limit(limit))]


def latest_decision(ledger: Ledger | LedgerReader) -> dict | None:
    """The newest decision record, or None when no decision was made yet."""
    latest = ledger.decisions.latest(1)
    return as_json(latest[0]) if latest else None
