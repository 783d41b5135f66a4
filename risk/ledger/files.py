"""The `files`, `rejected_rows` and `index_segments` tables: every input file seen, its byte ranges in the
appended history, the rows it had rejected, and the merged de-duplication segments of the row index.

Ingestion writes a run's files and rejected rows inside one `ledger.transaction()`. Stdlib only.
"""
from __future__ import annotations

from risk.ledger.base import Store, now


class Files(Store):
    """Files seen in the input folder, their rejected rows, and the index segments covering them."""

    # what the input folder's entries were
    def sha_by_stat(self, name: str, size: int, mtime_ns: int) -> str | None:
        row = self._one("SELECT sha256 FROM files WHERE name = ? AND size = ? AND mtime_ns = ? ORDER BY id DESC"
                        " LIMIT 1", name, size, mtime_ns)
        return row[0] if row else None

    def note_stat(self, name: str, sha256: str, size: int, mtime_ns: int) -> None:
        """The mtime a file recorded as (name, sha256) has now, its content unchanged (touched, copied, restored):
        the newest such record takes it, so that later ticks find the file by its stat and read none of it."""
        with self.transaction():
            self.db.execute("UPDATE files SET mtime_ns = ? WHERE id = (SELECT id FROM files WHERE name = ? AND"
                            " sha256 = ? AND size = ? ORDER BY id DESC LIMIT 1)", (mtime_ns, name, sha256, size))

    def seen(self, name: str, sha256: str) -> bool:
        return self._one("SELECT 1 FROM files WHERE name = ? AND sha256 = ?", name, sha256) is not None

    def ingested_name(self, sha256: str) -> str | None:
        """The name under which these bytes were ingested, if they were."""
        row = self._one("SELECT name FROM files WHERE sha256 = ? AND status = 'ingested' ORDER BY id LIMIT 1", sha256)
        return row[0] if row else None

    def last_sha(self, name: str) -> str | None:
        """The content last seen under this name."""
        row = self._one("SELECT sha256 FROM files WHERE name = ? ORDER BY id DESC LIMIT 1", name)
        return row[0] if row else None

    def records(self, status: str | None = None, pending: bool = False) -> list[dict]:
        """The file records, oldest first: of one status, and only those no decision settled with `pending`."""
        sql, args = "SELECT * FROM files WHERE 1 = 1", []
        if status:
            sql, args = sql + " AND status = ?", [status]
        if pending:
            sql += " AND decided_run IS NULL"
        return self._dicts(sql + " ORDER BY id", *args)

    def has_new_rows(self) -> bool:
        """Undecided rows that no decision has seen yet: what makes a drift decision worth making again."""
        return self._one("SELECT 1 FROM files WHERE status = 'ingested' AND decided_run IS NULL"
                         " AND deferred_run IS NULL AND rows > 0") is not None

    def settle_trained(self, run_id: int, up_to_file: int) -> int:
        """Mark undecided ingested files up to id `up_to_file` (those a model deployed by hand was trained on)
        as decided by `run_id`, so that no drift test scores that model on its own training rows."""
        with self.transaction():
            return self.db.execute("UPDATE files SET decided_run = ? WHERE status = 'ingested' AND decided_run IS NULL"
                                   " AND id <= ?", (run_id, up_to_file)).rowcount

    # ingestion: appended data, rejected rows (issue 4)
    def committed_ends(self) -> tuple[int | None, int | None]:
        """(finaldata.csv, rejects.csv) byte lengths recorded with the latest file; None before any."""
        row = self._one("SELECT data_end, rejects_end FROM files WHERE data_end IS NOT NULL ORDER BY id DESC LIMIT 1")
        return (row[0], row[1]) if row else (None, None)

    def committed_point(self) -> tuple[int, int] | None:
        """(finaldata.csv's byte length, the observations: every accepted row, duplicates included) recorded with
        the latest file: the point the prepared read state must cover; None before any."""
        row = self._one("SELECT data_end, observations FROM files WHERE data_end IS NOT NULL ORDER BY id DESC LIMIT 1")
        return (row[0], row[1] or 0) if row else None

    def points(self) -> list[tuple[int, int]]:
        """(finaldata.csv's byte length, the observations) after each file that added to them, oldest first: where
        the history can be cut to be read a piece at a time."""
        return [(end, observations or 0) for end, observations in self.db.execute(
            "SELECT data_end, observations FROM files WHERE data_end IS NOT NULL ORDER BY id")]

    def repeat_parts(self) -> list[tuple[str, int]]:
        """(part of repeats/, the observations counted after its file) of every file whose duplicate rows were kept
        as observations, oldest first."""
        return [(name, end) for name, end in self.db.execute(
            "SELECT repeats, observations FROM files WHERE repeats IS NOT NULL AND status = 'ingested' ORDER BY id")]

    def add_rejected_rows(self, run_id: int, file: str, rows: list[tuple]) -> None:
        """(row, column, value, reason) tuples of a file not yet recorded: inside the run's transaction they are
        committed with the file's record (`add`, which claims them), or vanish with a crash or a failure."""
        with self.transaction():
            self.db.executemany(
                "INSERT INTO rejected_rows (run_id, file_id, file, row, column_name, value, reason)"
                " VALUES (?, NULL, ?, ?, ?, ?, ?)",
                [(run_id, file, *row) for row in rows],
            )

    def discard_rejected_rows(self, run_id: int) -> None:
        """Drop the rejected rows added for a file that is being set aside whole (not yet claimed by `add`)."""
        with self.transaction():
            self.db.execute("DELETE FROM rejected_rows WHERE file_id IS NULL AND run_id = ?", (run_id,))

    def add(self, run_id: int, record: dict) -> int:
        """A file's record, with its byte ranges, claiming the rejected rows added for it."""
        columns = ("run_id", *record, "seen_at")
        with self.transaction():
            file_id = self.db.execute(
                f"INSERT INTO files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608
                (run_id, *record.values(), now()),
            ).lastrowid
            self.db.execute("UPDATE rejected_rows SET file_id = ? WHERE file_id IS NULL AND run_id = ?",
                            (file_id, run_id))
        return file_id

    def set_part(self, file_id: int, part: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE files SET part = ? WHERE id = ?", (part, file_id))

    def set_data_range(self, file_id: int, rows: int, data_end: int, data_start: int, rejects_end: int,
                       observations: int, repeats: str | None) -> None:
        """Record where a file adopted from the old parts layout now lies in finaldata.csv."""
        with self.transaction():
            self.db.execute("UPDATE files SET rows = ?, data_start = ?, data_end = ?, rejects_end = ?,"
                            " observations = ?, repeats = ? WHERE id = ?",
                            (rows, data_start, data_end, rejects_end, observations, repeats, file_id))

    def rejected_rows(self, file: str | None = None) -> list[dict]:
        if file is None:
            return self._dicts("SELECT * FROM rejected_rows ORDER BY id")
        return self._dicts("SELECT * FROM rejected_rows WHERE file = ? ORDER BY id", file)

    # the de-duplication index's merged segments
    def index_segment(self) -> dict | None:
        """The latest merged de-duplication segment (it covers every ingested file with id <= max_file_id)."""
        row = self._one("SELECT * FROM index_segments ORDER BY id DESC LIMIT 1")
        return dict(row) if row else None

    def record_index_segment(self, path: str, max_file_id: int, rows: int) -> None:
        self._insert("INSERT INTO index_segments (path, max_file_id, rows, created_at) VALUES (?, ?, ?, ?)",
                     path, max_file_id, rows, now())

    def move_history(self, ranges: dict[int, tuple[int, int]], segment: str, max_file_id: int, rows: int) -> None:
        """One transaction for a migrated history (risk/migrate.py): every file's new byte range in finaldata.csv
        and the index segment rebuilt from it, which covers every file so far."""
        with self.transaction():
            self.db.executemany("UPDATE files SET data_start = ?, data_end = ? WHERE id = ?",
                                [(start, end, file_id) for file_id, (start, end) in ranges.items()])
            self.record_index_segment(segment, max_file_id, rows)

    def newest(self, limit: int) -> list[dict]:
        """The newest `limit` files the ledger has seen, oldest first."""
        return list(reversed(self._dicts("SELECT * FROM files ORDER BY id DESC LIMIT ?", limit)))

    def totals(self) -> dict:
        """Every file counted: files, ingested and rejected ones, rows ingested, rows rejected."""
        row = self._one("SELECT COUNT(*), TOTAL(status = 'ingested'), TOTAL(status = 'rejected'),"
                        " TOTAL(CASE WHEN status = 'ingested' THEN rows END), TOTAL(rejected_rows) FROM files")
        keys = ("files", "ingested_files", "rejected_files", "ingested_rows", "rejected_rows")
        return dict(zip(keys, map(int, row), strict=True))

    def rejection_counts(self, limit: int) -> tuple[list[dict], dict]:
        """Rejected rows (not whole files) by reason, the `limit` most frequent first, and how many reasons and
        rows the rest hold."""
        top = self.db.execute("SELECT reason, COUNT(*) AS n FROM rejected_rows WHERE row IS NOT NULL GROUP BY reason"
                              " ORDER BY n DESC, reason LIMIT ?", (limit,)).fetchall()
        reasons, rows = self._one("SELECT COUNT(DISTINCT reason), COUNT(*) FROM rejected_rows WHERE row IS NOT NULL")
        shown = [{"reason": reason, "rows": n} for reason, n in top]
        return shown, {"reasons": reasons - len(shown), "rows": rows - sum(r["rows"] for r in shown)}
