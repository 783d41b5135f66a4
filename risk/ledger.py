"""The run ledger: one SQLite file (WAL) that records every stage run, file, score, decision and deployment.

It is the source of truth; ingestedfiles.txt and latestscore.txt are views written for the course's readers.
The schema version lives in `PRAGMA user_version`. Stdlib only: the idle cron tick opens it.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
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
)
SCHEMA_VERSION = len(MIGRATIONS)


def now() -> str:
    """UTC time in ISO 8601 with milliseconds (time, not datetime: one import less on the idle path)."""
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}+00:00"


class OldLedger(MissingInputError):
    """A reader found a ledger of another schema: only a writer (a pipeline run) migrates it; a GET says 503."""


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the ledger (SQLite mode=ro), for the API: a GET never writes or migrates
    it. Reading a WAL database maps its -shm index (SQLite creates it, empty, if absent); no data is written."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=30)


class Ledger:
    """A thin wrapper over one SQLite connection; each write is its own transaction."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        if read_only:  # the API: never creates, writes or migrates; another schema is a 503 naming the cure
            self.db = read_only_connection(path)
            self.db.row_factory = sqlite3.Row
            version = self._version()
            if version != SCHEMA_VERSION:
                self.db.close()
                raise OldLedger(f"{path}: ledger schema {version}, this code reads {SCHEMA_VERSION}: run the pipeline"
                                " once to upgrade the ledger (fullprocess.py)")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return
        self.db.execute("PRAGMA journal_mode=WAL")  # persistent in the file: set once, at creation
        self.db.execute("BEGIN IMMEDIATE")  # two first runs at once: one creates, the other waits
        try:
            version = self._version()
            if version > SCHEMA_VERSION:
                raise RiskError(f"{self.path}: ledger schema {version} is newer than this code's {SCHEMA_VERSION}")
            for script in MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _insert(self, sql: str, *args: object) -> int:
        with self.db:
            return self.db.execute(sql, args).lastrowid

    # runs
    def start_run(self, stage: str, parent_id: int | None = None) -> int:
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

    def end_run(self, run_id: int, outcome: str, detail: dict | None = None) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET ended_at = ?, outcome = ?, detail = ? WHERE id = ?",
                (now(), outcome, json.dumps(detail or {}, default=str), run_id),
            )

    def run(self, run_id: int) -> dict | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    # files
    def sha_by_stat(self, name: str, size: int, mtime_ns: int) -> str | None:
        row = self.db.execute(
            "SELECT sha256 FROM files WHERE name = ? AND size = ? AND mtime_ns = ? ORDER BY id DESC LIMIT 1",
            (name, size, mtime_ns),
        ).fetchone()
        return row[0] if row else None

    def file_seen(self, name: str, sha256: str) -> bool:
        row = self.db.execute("SELECT 1 FROM files WHERE name = ? AND sha256 = ?", (name, sha256)).fetchone()
        return row is not None

    def ingested_sha(self, sha256: str) -> str | None:
        """The name under which these bytes were ingested, if they were."""
        row = self.db.execute(
            "SELECT name FROM files WHERE sha256 = ? AND status = 'ingested' ORDER BY id LIMIT 1", (sha256,)
        ).fetchone()
        return row[0] if row else None

    def files(self, status: str | None = None, pending: bool = False) -> list[dict]:
        sql, args = "SELECT * FROM files WHERE 1 = 1", []
        if status:
            sql, args = sql + " AND status = ?", [status]
        if pending:
            sql += " AND decided_run IS NULL"
        return [dict(row) for row in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    # ingestion: appended data, rejected rows, the de-duplication index (issue 4)
    def committed_ends(self) -> tuple[int | None, int | None]:
        """(finaldata.csv, rejects.csv) byte lengths recorded with the latest file; None before any."""
        row = self.db.execute(
            "SELECT data_end, rejects_end FROM files WHERE data_end IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def ingested_before(self, run_id: int) -> bool:
        """Whether an ingestion run started before `run_id` (a killed one counts): else no byte of the
        appended files can be this ledger's to cut."""
        row = self.db.execute("SELECT 1 FROM runs WHERE stage = 'ingestion' AND id < ? LIMIT 1", (run_id,)).fetchone()
        return row is not None

    def stage_rejected_rows(self, run_id: int, file: str, rows: list[tuple]) -> None:
        """Insert (row, column, value, reason) tuples inside the open transaction, without committing:
        they are committed with the file's record (`stage_file`, then `commit`), or vanish with a crash."""
        self.db.executemany(
            "INSERT INTO rejected_rows (run_id, file_id, file, row, column_name, value, reason)"
            " VALUES (?, NULL, ?, ?, ?, ?, ?)",
            [(run_id, file, *row) for row in rows],
        )

    def discard_staged(self, run_id: int) -> None:
        """Drop the rejected rows staged for a file that is being set aside whole (still uncommitted)."""
        self.db.execute("DELETE FROM rejected_rows WHERE file_id IS NULL AND run_id = ?", (run_id,))

    def stage_file(self, run_id: int, record: dict) -> int:
        """A file's record, with its byte ranges, claiming its staged rejected rows; committed by `commit`."""
        columns = ("run_id", *record, "seen_at")
        file_id = self.db.execute(
            f"INSERT INTO files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608
            (run_id, *record.values(), now()),
        ).lastrowid
        self.db.execute("UPDATE rejected_rows SET file_id = ? WHERE file_id IS NULL AND run_id = ?", (file_id, run_id))
        return file_id

    def set_part(self, file_id: int, part: str) -> None:
        self.db.execute("UPDATE files SET part = ? WHERE id = ?", (part, file_id))

    def commit(self) -> None:
        self.db.commit()

    def set_data_range(self, file_id: int, rows: int, data_end: int, data_start: int, rejects_end: int) -> None:
        """Record where a file adopted from the old parts layout now lies in finaldata.csv."""
        with self.db:
            self.db.execute("UPDATE files SET rows = ?, data_start = ?, data_end = ?, rejects_end = ? WHERE id = ?",
                            (rows, data_start, data_end, rejects_end, file_id))

    def rejected_rows(self, file: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM rejected_rows", ()
        if file is not None:
            sql, args = sql + " WHERE file = ?", (file,)
        return [dict(row) for row in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def last_name_sha(self, name: str) -> str | None:
        row = self.db.execute("SELECT sha256 FROM files WHERE name = ? ORDER BY id DESC LIMIT 1", (name,)).fetchone()
        return row[0] if row else None

    def index_segment(self) -> dict | None:
        """The latest merged de-duplication segment (it covers every ingested file with id <= max_file_id)."""
        row = self.db.execute("SELECT * FROM index_segments ORDER BY id DESC LIMIT 1").fetchone()
        return dict(row) if row else None

    def move_history(self, ranges: dict[int, tuple[int, int]], segment: str, max_file_id: int, rows: int) -> None:
        """One transaction for a migrated history (risk/migrate.py): every file's new byte range in finaldata.csv
        and the index segment rebuilt from it, which covers every file so far."""
        with self.db:
            self.db.executemany("UPDATE files SET data_start = ?, data_end = ? WHERE id = ?",
                                [(start, end, file_id) for file_id, (start, end) in ranges.items()])
            self.db.execute("INSERT INTO index_segments (path, max_file_id, rows, created_at) VALUES (?, ?, ?, ?)",
                            (segment, max_file_id, rows, now()))

    def record_index_segment(self, path: str, max_file_id: int, rows: int) -> None:
        self._insert("INSERT INTO index_segments (path, max_file_id, rows, created_at) VALUES (?, ?, ?, ?)",
                     path, max_file_id, rows, now())

    # scores, decisions, deployments
    def record_score(self, run_id: int | None, model_sha256: str, dataset: str, f1: float, n: int) -> int:
        return self._insert(
            "INSERT INTO scores (run_id, model_sha256, dataset, f1, n, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            run_id, model_sha256, dataset, f1, n, now(),
        )

    def score_for(self, model_sha256: str, dataset: str = "testdata") -> float | None:
        """The latest recorded score of this model file on `dataset`, if any."""
        row = self.db.execute(
            "SELECT f1 FROM scores WHERE model_sha256 = ? AND dataset = ? ORDER BY id DESC LIMIT 1",
            (model_sha256, dataset),
        ).fetchone()
        return row[0] if row else None

    def settle_trained_files(self, run_id: int, up_to_file: int) -> int:
        """Mark undecided ingested files up to id `up_to_file` (those a model deployed by hand was trained on)
        as decided by `run_id`, so that no drift test scores that model on its own training rows."""
        with self.db:
            return self.db.execute("UPDATE files SET decided_run = ? WHERE status = 'ingested' AND decided_run IS NULL"
                                   " AND id <= ?", (run_id, up_to_file)).rowcount

    def record_decision(self, run_id: int, verdict: str, action: str, evidence: dict, file_ids: list[int],
                        intent_id: int | None = None, settled_by: int | None = None) -> int:
        """Record a decision and mark the files it covered as decided (and its intent settled), in one transaction."""
        with self.db:
            self.db.executemany("UPDATE files SET decided_run = ? WHERE id = ?", [(run_id, i) for i in file_ids])
            if intent_id is not None:
                self._settle(intent_id, settled_by or run_id, "recorded")
            return self.db.execute(
                "INSERT INTO decisions (run_id, created_at, verdict, action, evidence) VALUES (?, ?, ?, ?, ?)",
                (run_id, now(), verdict, action, json.dumps(evidence, default=str)),
            ).lastrowid

    def has_new_rows(self) -> bool:
        """Undecided rows that no decision has seen yet: what makes a drift decision worth making again."""
        row = self.db.execute("SELECT 1 FROM files WHERE status = 'ingested' AND decided_run IS NULL"
                              " AND deferred_run IS NULL AND rows > 0").fetchone()
        return row is not None

    def record_deferral(self, run_id: int, verdict: str, action: str, evidence: dict, file_ids: list[int]) -> int:
        """Record an inconclusive decision and mark its files deferred (still undecided), in one transaction.

        Deferred files join the next decision, which runs when new data arrives; the idle tick skips them.
        """
        with self.db:
            self.db.executemany("UPDATE files SET deferred_run = ? WHERE id = ?", [(run_id, i) for i in file_ids])
            return self.db.execute(
                "INSERT INTO decisions (run_id, created_at, verdict, action, evidence) VALUES (?, ?, ?, ?, ?)",
                (run_id, now(), verdict, action, json.dumps(evidence, default=str)),
            ).lastrowid

    def scores(self) -> list[dict]:
        return [dict(row) for row in self.db.execute("SELECT * FROM scores ORDER BY id").fetchall()]

    def scores_of(self, model_sha256: str) -> list[float]:
        """Every recorded score of this model file, oldest first (the past scores of the history rules)."""
        rows = self.db.execute("SELECT f1 FROM scores WHERE model_sha256 = ? ORDER BY id", (model_sha256,))
        return [row[0] for row in rows.fetchall()]

    def decisions(self, limit: int = 20) -> list[dict]:
        rows = self.db.execute("SELECT * FROM decisions ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "evidence": json.loads(row["evidence"])} for row in rows]

    def record_deployment(self, run_id: int | None, version: int, model_sha256: str, score: float,
                          action: str = "deploy", reason: str | None = None, actor: str | None = None) -> int:
        """A version made current: by a deploy, or by a rollback with who and why."""
        return self._insert(
            "INSERT INTO deployments (run_id, version, created_at, model_sha256, score, action, reason, actor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_id, version, now(), model_sha256, score, action, reason, actor,
        )

    def last_deployed_version(self) -> int | None:
        """The version the newest deployment record made current (cheap: the idle tick asks it)."""
        row = self.db.execute("SELECT version FROM deployments ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def deployments(self) -> list[dict]:
        return [dict(row) for row in self.db.execute("SELECT * FROM deployments ORDER BY id").fetchall()]

    def last_deployment(self) -> dict | None:
        """The newest deployment record: id, version and the run that made its diagnostics and report, if one did."""
        row = self.db.execute("SELECT id, version, followed_up_run FROM deployments ORDER BY id DESC LIMIT 1")
        found = row.fetchone()
        return dict(found) if found else None

    def record_follow_up(self, deployment_id: int, run_id: int) -> None:
        """The deployment's diagnostics, report and API calls are done (a killed run leaves this unset)."""
        with self.db:
            self.db.execute("UPDATE deployments SET followed_up_run = ? WHERE id = ?", (run_id, deployment_id))

    # intents: a decision that deploys is written here before `current` switches, and settled with its record
    def record_intent(self, run_id: int, from_version: int | None, verdict: str, evidence: dict,
                      file_ids: list[int]) -> int:
        return self._insert(
            "INSERT INTO intents (run_id, created_at, from_version, verdict, evidence, file_ids)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            run_id, now(), from_version, verdict, json.dumps(evidence, default=str), json.dumps(file_ids),
        )

    def open_intent(self) -> dict | None:
        """The newest intent no decision record settled: its run was killed (or failed) after writing it."""
        row = self.db.execute("SELECT * FROM intents WHERE settled_run IS NULL ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return {**dict(row), "evidence": json.loads(row["evidence"]), "file_ids": json.loads(row["file_ids"])}

    def _settle(self, intent_id: int, run_id: int, outcome: str) -> None:
        self.db.execute("UPDATE intents SET settled_run = ?, outcome = ? WHERE id = ?", (run_id, outcome, intent_id))

    def abandon_intent(self, intent_id: int, run_id: int) -> None:
        """The intent's deploy never made a version current: its files stay undecided for the next decision."""
        with self.db:
            self._settle(intent_id, run_id, "abandoned")

    def child_run(self, parent_id: int, stage: str) -> int | None:
        """The newest run of `stage` started by run `parent_id`."""
        row = self.db.execute("SELECT id FROM runs WHERE parent_id = ? AND stage = ? ORDER BY id DESC LIMIT 1",
                              (parent_id, stage)).fetchone()
        return row[0] if row else None

    # the call lists (issue 14): each list as it was, to measure its outcome when later data arrives
    def record_call_list(self, run_id: int | None, model_version: int, capacity: int, data_rows: int,
                         data_end: int, clients: list[dict]) -> int:
        return self._insert("INSERT INTO call_lists (run_id, created_at, model_version, capacity, data_rows, data_end,"
                            " clients) VALUES (?, ?, ?, ?, ?, ?, ?)", run_id, now(), model_version, capacity,
                            data_rows, data_end, json.dumps(clients))

    def call_lists(self, limit: int = 12) -> list[dict]:
        """The newest `limit` recorded lists, newest first, each with its clients parsed."""
        rows = self.db.execute("SELECT * FROM call_lists ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "clients": json.loads(row["clients"])} for row in rows]

    def listed_by_end(self) -> dict[int, set[str]]:
        """For each history length at which lists were recorded, the clients listed then (every list's)."""
        listed: dict[int, set[str]] = {}
        for data_rows, clients in self.db.execute("SELECT data_rows, clients FROM call_lists"):
            listed.setdefault(int(data_rows), set()).update(c["corporation"] for c in json.loads(clients))
        return listed

    # the report's reads (issue 22): the decision of a run by the index, bounded reads of files and rejected rows
    def decision_of_run(self, run_id: int) -> dict | None:
        """The newest decision recorded by run `run_id` (the pipeline run that deployed a version)."""
        row = self.db.execute("SELECT * FROM decisions WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)).fetchone()
        return {**dict(row), "evidence": json.loads(row["evidence"])} if row else None

    def newest_files(self, limit: int) -> list[dict]:
        """The newest `limit` files the ledger has seen, oldest first."""
        rows = self.db.execute("SELECT * FROM files ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(row) for row in reversed(rows)]

    def file_totals(self) -> dict:
        """Every file counted: files, ingested and rejected ones, rows ingested, rows rejected."""
        row = self.db.execute("SELECT COUNT(*), TOTAL(status = 'ingested'), TOTAL(status = 'rejected'),"
                              " TOTAL(CASE WHEN status = 'ingested' THEN rows END), TOTAL(rejected_rows)"
                              " FROM files").fetchone()
        keys = ("files", "ingested_files", "rejected_files", "ingested_rows", "rejected_rows")
        return dict(zip(keys, map(int, row), strict=True))

    def rejection_counts(self, limit: int) -> tuple[list[dict], dict]:
        """Rejected rows (not whole files) by reason, the `limit` most frequent first, and how many reasons and
        rows the rest hold."""
        top = self.db.execute("SELECT reason, COUNT(*) AS n FROM rejected_rows WHERE row IS NOT NULL GROUP BY reason"
                              " ORDER BY n DESC, reason LIMIT ?", (limit,)).fetchall()
        reasons, rows = self.db.execute("SELECT COUNT(DISTINCT reason), COUNT(*) FROM rejected_rows"
                                        " WHERE row IS NOT NULL").fetchone()
        shown = [{"reason": reason, "rows": n} for reason, n in top]
        return shown, {"reasons": reasons - len(shown), "rows": rows - sum(r["rows"] for r in shown)}

    # diagnostics (issue 8): timings and dependency status over time; the cache of the index's latest versions
    def record_diagnostics(self, run_id: int | None, report: dict) -> int:
        timings = report.get("execution_time") or {}
        return self._insert(
            "INSERT INTO diagnostics (run_id, created_at, model_version, ingestion_seconds, training_seconds,"
            " repeats, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            run_id, now(), report.get("model_version"), timings.get("ingestion_seconds"),
            timings.get("training_seconds"), timings.get("repeats"), json.dumps(report, default=str),
        )

    def diagnostics(self, limit: int = 50) -> list[dict]:
        """The latest `limit` diagnostics, oldest first, each with its full report parsed."""
        rows = self.db.execute("SELECT * FROM diagnostics ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in reversed(rows)]

    def package_versions(self) -> dict[str, tuple[str, float]]:
        """{name: (latest version or "unknown", checked at, epoch seconds)}."""
        rows = self.db.execute("SELECT name, latest, checked_at FROM package_versions").fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def store_package_versions(self, found: dict[str, tuple[str, float]]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO package_versions (name, latest, checked_at) VALUES (?, ?, ?)",
                                [(name, latest, at) for name, (latest, at) in found.items()])


def read_package_versions(path: Path) -> dict[str, tuple[str, float]]:
    """The cached latest versions, read without migrating the schema (for GET requests, which write nothing).

    Empty when the ledger predates the table (its next writer migrates it)."""
    try:
        with contextlib.closing(read_only_connection(path)) as db:
            rows = db.execute("SELECT name, latest, checked_at FROM package_versions").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: (latest, at) for name, latest, at in rows}


def read_stage_seconds(path: Path, stages: tuple[str, ...], limit: int = 10) -> dict[str, list[float]]:
    """{stage: seconds of its latest `limit` successful runs, oldest first}, read without migrating (for GETs)."""
    found: dict[str, list[float]] = {stage: [] for stage in stages}
    try:
        with contextlib.closing(read_only_connection(path)) as db:
            for stage in stages:
                rows = db.execute("SELECT started_at, ended_at FROM runs WHERE stage = ? AND outcome = 'ok' AND"
                                  " ended_at IS NOT NULL ORDER BY id DESC LIMIT ?", (stage, limit)).fetchall()
                found[stage] = [(_parse_time(end) - _parse_time(start)).total_seconds()
                                for start, end in reversed(rows)]
    except sqlite3.OperationalError:
        return found
    return found


def read_committed_end(path: Path) -> int | None:
    """The byte length of finaldata.csv the ledger has committed (None before any), read without migrating."""
    try:
        with contextlib.closing(read_only_connection(path)) as db:
            row = db.execute("SELECT data_end FROM files WHERE data_end IS NOT NULL"
                             " ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def read_last_diagnostics(path: Path) -> dict | None:
    """The newest diagnostics run's report with its time, read without migrating (for GETs); None before one."""
    try:
        with contextlib.closing(read_only_connection(path)) as db:
            row = db.execute("SELECT created_at, detail FROM diagnostics ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    return {**json.loads(row[1]), "recorded_at": row[0]} if row else None


def _parse_time(text: str):  # -> datetime
    from datetime import datetime

    return datetime.fromisoformat(text)


@contextlib.contextmanager
def recorded(path: Path, stage: str, parent_run: int | None = None) -> Iterator[tuple[Ledger, int, dict]]:
    """Open the ledger and record one stage run; the caller fills `detail`, the outcome is set on exit."""
    with Ledger(path) as ledger:
        run_id = ledger.start_run(stage, parent_run)
        detail: dict = {}
        try:
            yield ledger, run_id, detail
        except BaseException as exc:
            ledger.end_run(run_id, "failed", {**detail, "error": f"{type(exc).__name__}: {exc}"})
            raise
        ledger.end_run(run_id, "ok", detail)
