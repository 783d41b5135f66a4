"""GETs never write: the API opens the ledger read-only (SQLite mode=ro), and a ledger of an older schema is a
503 saying to run the pipeline once, never a migration from a request."""
from __future__ import annotations

import contextlib
import sqlite3

import pytest
from conftest import snapshot

from app import create_app
from risk.config import Config
from risk.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, LedgerReader


def schema_of(config: Config) -> int:
    with sqlite3.connect(config.ledger_path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_the_apis_ledger_connection_cannot_write(deployed: Config) -> None:
    with LedgerReader(deployed.ledger_path) as ledger, \
            pytest.raises(sqlite3.OperationalError, match="readonly database"):
        ledger.runs.start("x")


def previous_schema_ledger(path) -> None:
    """A ledger as the previous release created it: every migration but the last, and its version."""
    path.unlink()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        for script in MIGRATIONS[:SCHEMA_VERSION - 1]:
            db.executescript(script)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        db.commit()


def test_a_ledger_of_an_older_schema_is_503_and_never_migrated_by_a_get(deployed: Config) -> None:
    previous_schema_ledger(deployed.ledger_path)
    before = snapshot(deployed.root)
    client = create_app(deployed).test_client()
    for route in ("/ready", "/decisions", "/decisions/latest"):
        answer = client.get(route)
        assert answer.status_code == 503, route
        assert answer.json["error"] == "not_ready"
        assert "run the pipeline once to upgrade the ledger" in answer.json["detail"]
        assert str(deployed.root) not in answer.json["detail"]
    assert client.get("/metrics").status_code == 200  # the scrape says so: risk_ledger_readable 0
    assert "risk_ledger_readable 0.0" in client.get("/metrics").get_data(as_text=True)
    assert schema_of(deployed) == SCHEMA_VERSION - 1
    assert snapshot(deployed.root) == before
    with Ledger(deployed.ledger_path):  # a pipeline run's writer migrates it
        pass
    assert schema_of(deployed) == SCHEMA_VERSION
    assert create_app(deployed).test_client().get("/ready").status_code == 200


def test_get_routes_before_the_first_run_create_no_ledger(config: Config) -> None:
    client = create_app(config).test_client()
    for route in ("/ready", "/decisions", "/metrics", "/summarystats", "/"):
        client.get(route)
    assert not config.ledger_path.exists()
