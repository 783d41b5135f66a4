"""The ledger's tables: one migration per schema version, applied in order by the writer that opens the file.

The file's `PRAGMA user_version` says how many migrations ran. A reader never migrates: a ledger of another
schema is OldLedger (a 503 naming the cure) until the next pipeline run upgrades it.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from risk.errors import MissingInputError, RiskError

# One entry per schema version, applied in order; the file's `PRAGMA user_version` says how many ran.
MIGRATIONS = (
    """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES runs(id), stage TEXT NOT NULL,
    started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, detail TEXT);
CREATE TABLE files (
    id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id), name TEXT NOT NULL,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ingested', 'rejected', 'duplicate')),
    reason TEXT, rows INTEGER, part TEXT, decided_run INTEGER, seen_at TEXT NOT NULL);
CREATE INDEX files_by_name ON files (name, sha256);
CREATE TABLE scores (
    id INTEGER PRIMARY KEY, run_id INTEGER, model_sha256 TEXT NOT NULL, dataset TEXT NOT NULL,
    f1 REAL NOT NULL, n INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY, run_id INTEGER, created_at TEXT NOT NULL, verdict TEXT NOT NULL,
    action TEXT NOT NULL, evidence TEXT NOT NULL);
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY, run_id INTEGER, version INTEGER NOT NULL, created_at TEXT NOT NULL,
    model_sha256 TEXT NOT NULL, score REAL NOT NULL);
""",
    """
CREATE TABLE rejected_rows (
    id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id), file_id INTEGER REFERENCES files(id),
    file TEXT NOT NULL, row INTEGER, column_name TEXT, value TEXT, reason TEXT NOT NULL);
CREATE INDEX rejected_rows_by_file ON rejected_rows (file_id);
ALTER TABLE deployments ADD COLUMN action TEXT NOT NULL DEFAULT 'deploy';
ALTER TABLE deployments ADD COLUMN reason TEXT;
ALTER TABLE deployments ADD COLUMN actor TEXT;
""",
    """
ALTER TABLE files ADD COLUMN data_start INTEGER;
ALTER TABLE files ADD COLUMN data_end INTEGER;
ALTER TABLE files ADD COLUMN rejects_end INTEGER;
ALTER TABLE files ADD COLUMN rejected_rows INTEGER;
CREATE TABLE index_segments (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, max_file_id INTEGER NOT NULL, rows INTEGER NOT NULL,
    created_at TEXT NOT NULL);
""",
    """
ALTER TABLE files ADD COLUMN deferred_run INTEGER;
""",
    """
CREATE TABLE diagnostics (
    id INTEGER PRIMARY KEY, run_id INTEGER, created_at TEXT NOT NULL, model_version TEXT,
    ingestion_seconds REAL, training_seconds REAL, repeats INTEGER, detail TEXT NOT NULL);
CREATE TABLE package_versions (
    name TEXT PRIMARY KEY, latest TEXT NOT NULL, checked_at REAL NOT NULL);
""",
    """
CREATE TABLE intents (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, created_at TEXT NOT NULL, from_version INTEGER,
    verdict TEXT NOT NULL, evidence TEXT NOT NULL, file_ids TEXT NOT NULL, settled_run INTEGER, outcome TEXT);
ALTER TABLE deployments ADD COLUMN followed_up_run INTEGER;
""",
    """
CREATE TABLE call_lists (
    id INTEGER PRIMARY KEY, run_id INTEGER, created_at TEXT NOT NULL, model_version INTEGER NOT NULL,
    capacity INTEGER NOT NULL, data_rows INTEGER NOT NULL, data_end INTEGER NOT NULL, clients TEXT NOT NULL);
""",
    """
CREATE INDEX decisions_by_run ON decisions (run_id);
""",
    # 9: contacts (append-only; the UNIQUE index's prefix is the index by client and time), the contacts folder's
    # files (by content) and the names and stats they were seen under, and each call list's random holdout.
    """
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY, corporation TEXT NOT NULL, contacted_at TEXT NOT NULL, result TEXT NOT NULL,
    note TEXT, source TEXT NOT NULL, recorded_at TEXT NOT NULL, UNIQUE (corporation, contacted_at, result));
CREATE TABLE contact_files (
    id INTEGER PRIMARY KEY, run_id INTEGER, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE, recorded_at TEXT NOT NULL,
    added INTEGER NOT NULL, repeated INTEGER NOT NULL, set_aside INTEGER NOT NULL, rejects_end INTEGER,
    detail TEXT NOT NULL);
CREATE TABLE contact_files_seen (
    name TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT, seen_at TEXT NOT NULL,
    PRIMARY KEY (name, size, mtime_ns));
ALTER TABLE call_lists ADD COLUMN holdout_seed INTEGER;
ALTER TABLE call_lists ADD COLUMN holdout_share REAL;
ALTER TABLE call_lists ADD COLUMN expected TEXT;
""",
    # 10: every accepted row is an observation (issue 23): the observations counted after each file (duplicates
    # included; before this, every ingested row was new, so the count is the ingested rows so far) and the part of
    # repeats/ holding the file's rows that finaldata.csv leaves out as duplicates
    """
ALTER TABLE files ADD COLUMN observations INTEGER;
ALTER TABLE files ADD COLUMN repeats TEXT;
UPDATE files SET observations = (SELECT COALESCE(SUM(earlier.rows), 0) FROM files AS earlier
    WHERE earlier.status = 'ingested' AND earlier.id <= files.id) WHERE data_end IS NOT NULL;
""",
)
SCHEMA_VERSION = len(MIGRATIONS)


class OldLedger(MissingInputError):
    """A reader found a ledger of another schema: only a writer (a pipeline run) migrates it; a GET says 503."""


def version_of(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def require_current(db: sqlite3.Connection, path: Path) -> None:
    """OldLedger when the file's schema is not this code's (a reader's check: it never migrates)."""
    version = version_of(db)
    if version != SCHEMA_VERSION:
        raise OldLedger(f"{path}: ledger schema {version}, this code reads {SCHEMA_VERSION}: run the pipeline"
                        " once to upgrade the ledger (fullprocess.py)")


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the file to SCHEMA_VERSION in one transaction (a writer's first step); a newer schema is refused."""
    if version_of(db) == SCHEMA_VERSION:
        return
    db.execute("PRAGMA journal_mode=WAL")  # persistent in the file: set once, at creation
    db.execute("BEGIN IMMEDIATE")  # two first runs at once: one creates, the other waits
    try:
        version = version_of(db)
        if version > SCHEMA_VERSION:
            raise RiskError(f"{path}: ledger schema {version} is newer than this code's {SCHEMA_VERSION}")
        for script in MIGRATIONS[version:]:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
