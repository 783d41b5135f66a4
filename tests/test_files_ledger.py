"""risk.files (atomic writes, the single-flight lock) and risk.ledger (schema, decisions, transactions), and that
no module outside risk/ledger/ writes SQL or holds a transaction."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HEADER, has_pending, record_file, runs, synthetic_frame, write_frame

from risk import ingestion
from risk.config import Config
from risk.errors import RiskError
from risk.files import TEMP_PREFIX, atomic_open, atomic_write_text, remove_temp_files, single_flight
from risk.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger

REPO = Path(__file__).resolve().parent.parent
HOLD_LOCK = """
import sys, time
from pathlib import Path
from risk.files import single_flight
with single_flight(Path(sys.argv[1])) as mine:
    print("held" if mine else "busy", flush=True)
    time.sleep(60)
"""


def temp_files(folder: Path) -> list[Path]:
    return list(folder.glob(TEMP_PREFIX + "*"))


def test_atomic_write_replaces_the_content(tmp_path):
    target = tmp_path / "score.txt"
    atomic_write_text(target, "0.5\n")
    atomic_write_text(target, "0.75\n")
    assert target.read_text(encoding="utf-8") == "0.75\n"
    assert temp_files(tmp_path) == []


def write_half_then_fail(target: Path) -> None:
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write("new, half")
        handle.flush()
        assert len(temp_files(target.parent)) == 1
        raise RuntimeError("disk gone")


def test_a_writer_that_raises_midway_leaves_the_old_content_and_no_temp_file(tmp_path):
    target = tmp_path / "finaldata.csv"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk gone"):
        write_half_then_fail(target)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert temp_files(tmp_path) == []


def test_remove_temp_files_counts_what_it_removed(tmp_path):
    (tmp_path / f"{TEMP_PREFIX}a.csv.123").write_text("x", encoding="utf-8")
    (tmp_path / "a.csv").write_text("keep", encoding="utf-8")
    assert remove_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]
    assert remove_temp_files(tmp_path / "missing") == 0


def test_single_flight_refuses_a_second_holder_until_released(tmp_path):
    lock = tmp_path / "out" / ".pipeline.lock"
    with single_flight(lock) as first:
        assert first is True
        with single_flight(lock) as second:
            assert second is False
    with single_flight(lock) as again:
        assert again is True


def test_single_flight_writes_the_holders_pid(tmp_path):
    lock = tmp_path / ".pipeline.lock"
    with single_flight(lock) as mine:
        assert mine
        assert lock.read_text(encoding="utf-8").strip().isdigit()


@pytest.mark.system
def test_a_lock_held_by_a_killed_process_does_not_block(tmp_path):
    lock = tmp_path / ".pipeline.lock"
    command = [sys.executable, "-c", HOLD_LOCK, str(lock)]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout.readline().strip() == "held"
            with single_flight(lock) as mine:
                assert mine is False
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with single_flight(lock) as mine:
        assert mine is True


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return version


def test_a_new_ledger_carries_the_schema_version(tmp_path):
    path = tmp_path / "out" / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.runs.start("ingestion")
    assert user_version(path) == SCHEMA_VERSION
    with Ledger(path) as ledger:
        assert [r["stage"] for r in runs(ledger)] == ["ingestion"]


def test_a_ledger_from_newer_code_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RiskError, match=f"ledger schema {SCHEMA_VERSION + 1} is newer"):
        Ledger(path)


def add_files(ledger: Ledger, run_id: int, names: list[str]) -> list[int]:
    return [record_file(ledger, run_id, n, n * 8, 10, 1, "ingested", rows=1, part=f"{n}.csv") for n in names]


def test_record_decision_marks_its_files_decided(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        run_id = ledger.runs.start("fullprocess")
        ids = add_files(ledger, run_id, ["a", "b", "c"])
        ledger.decisions.record(run_id, "NO_DRIFT", "kept the deployed model", {"f1": 0.5}, ids[:2])
        assert [f["name"] for f in ledger.files.records(pending=True)] == ["c"]
        assert ledger.decisions.latest()[0]["evidence"] == {"f1": 0.5}
        ledger.decisions.record(run_id, "DRIFT", "deployed version 2", {}, ids[2:])
        assert not has_pending(ledger)


def test_a_failed_decision_marks_no_file(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        run_id = ledger.runs.start("fullprocess")
        ids = add_files(ledger, run_id, ["a", "b"])
        with pytest.raises(sqlite3.IntegrityError):
            ledger.decisions.record(run_id, None, "kept", {}, ids)
        assert [f["name"] for f in ledger.files.records(pending=True)] == ["a", "b"]
        assert ledger.decisions.latest() == []


def test_a_version_1_ledger_is_migrated_in_place_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    old = sqlite3.connect(path)
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):
        old.execute(statement)
    old.execute("INSERT INTO deployments (run_id, version, created_at, model_sha256, score)"
                " VALUES (1, 1, 't', 'x', 0.5)")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with Ledger(path) as ledger:
        assert [(d["version"], d["action"]) for d in ledger.deployments.records()] == [(1, "deploy")]
        assert ledger.files.rejected_rows() == []
    assert user_version(path) == SCHEMA_VERSION > 1


# ---- transactions: everything written in the block commits at its end, or nothing when it raises --------------
TABLES = ("runs", "files", "rejected_rows", "scores", "intents", "decisions", "deployments", "call_lists")


def committed_counts(path: Path) -> dict[str, int]:
    """Rows per table as another connection sees them: what is committed, nothing pending."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def write_one_of_each(ledger: Ledger, run_id: int) -> None:
    """One row in each table, through each store (every write a transaction of its own outside a block)."""
    ledger.files.add_rejected_rows(run_id, "a.csv", [(2, "x", "bad", "not a number")])
    file_id = ledger.files.add(run_id, {"name": "a.csv", "sha256": "aa", "size": 1, "mtime_ns": 1,
                                        "status": "ingested", "rows": 3})
    ledger.scores.record(run_id, "m" * 64, "testdata", 0.5, 3)
    intent = ledger.intents.record(run_id, None, "BOOTSTRAP", {}, [file_id])
    ledger.decisions.record(run_id, "BOOTSTRAP", "deployed version 1", {}, [file_id], intent)
    ledger.deployments.record(run_id, 1, "m" * 64, 0.5)
    ledger.call_lists.record(run_id, 1, 10, 3, 100, [{"corporation": "acme"}])
    ledger.runs.start("deployment", run_id)


def write_then_fail(ledger: Ledger, run_id: int) -> None:
    with ledger.transaction():
        write_one_of_each(ledger, run_id)
        raise OSError("disk full")


def test_a_transaction_whose_body_raises_leaves_every_table_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        run_id = ledger.runs.start("fullprocess")
        before = committed_counts(path)
        assert before == {**dict.fromkeys(TABLES, 0), "runs": 1}
        with pytest.raises(OSError, match="disk full"):
            write_then_fail(ledger, run_id)
        assert committed_counts(path) == before
        assert ledger.files.records() == []  # this connection holds nothing pending either
        ledger.runs.end(run_id, "failed")  # the next write commits only itself
    assert committed_counts(path) == before


def test_a_transaction_commits_everything_at_its_end_and_nothing_before(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        run_id = ledger.runs.start("fullprocess")
        with ledger.transaction():
            write_one_of_each(ledger, run_id)
            assert committed_counts(path) == {**dict.fromkeys(TABLES, 0), "runs": 1}  # the inner writes joined
        assert committed_counts(path) == {**dict.fromkeys(TABLES, 1), "runs": 2}
        assert ledger.files.rejected_rows()[0]["file_id"] == ledger.files.records()[0]["id"]  # claimed by its file


def test_a_failed_ingestion_commits_none_of_its_files_and_the_next_run_takes_them(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    write_frame(synthetic_frame(3), config.input_folder / "extra.csv")
    with open(config.input_folder / "extra.csv", "a", encoding="utf-8") as handle:
        handle.write(",".join(["beta", "not a number", *["1"] * (HEADER.count(",") - 1)]) + "\n")

    def disk_full(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ingestion, "sync_payload", disk_full)  # the last step inside the run's transaction
    with pytest.raises(OSError, match="disk full"):
        ingestion.run_ingestion(config)
    assert committed_counts(config.ledger_path) == {**dict.fromkeys(TABLES, 0), "runs": 1}
    with Ledger(config.ledger_path) as ledger:
        assert runs(ledger)[0]["outcome"] == "failed"
    monkeypatch.undo()
    ingestion.run_ingestion(config)
    with Ledger(config.ledger_path) as ledger:
        assert [f["status"] for f in ledger.files.records()] == ["ingested"] * 3
        assert [(r["file"], r["row"]) for r in ledger.files.rejected_rows()] == [("extra.csv", 5)]


# ---- SQL and transactions stay inside risk/ledger/ -------------------------------------------------------------
SQL = re.compile(r"SELECT|INSERT|UPDATE |DELETE FROM|CREATE TABLE")
HOLDS_A_TRANSACTION = re.compile(r"\.db\b|\.commit\(\)|rollback\(\)")


def sources_outside_the_ledger(root: Path) -> list[Path]:
    """The project's Python files but risk/ledger/ and tests/ (which may build old schemas by hand); hidden
    folders (.venv, .git) are not walked."""
    found = []
    for folder, subfolders, names in os.walk(root):
        where = Path(folder).relative_to(root).parts
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")
                               and (*where, d) not in {("tests",), ("risk", "ledger")})
        found += [Path(folder) / name for name in sorted(names) if name.endswith(".py")]
    return found


def lines_matching(pattern: re.Pattern, paths: list[Path]) -> list[str]:
    return [f"{path}:{number}: {line.strip()}" for path in paths
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]


def test_no_module_outside_the_ledger_package_writes_sql() -> None:
    assert lines_matching(SQL, sources_outside_the_ledger(REPO)) == []


def test_no_module_outside_the_ledger_package_holds_a_transaction_or_its_connection() -> None:
    assert lines_matching(HOLDS_A_TRANSACTION, sources_outside_the_ledger(REPO)) == []


def test_the_sql_finder_finds_sql_in_a_new_module_and_not_in_the_ledger_or_tests(tmp_path: Path) -> None:
    for name in ("risk/ledger/runs.py", "tests/test_x.py", ".venv/lib/x.py", "risk/newmodule.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('QUERY = "SELECT id FROM runs"\nledger.db.commit()\n', encoding="utf-8")
    found = sources_outside_the_ledger(tmp_path)
    assert found == [tmp_path / "risk" / "newmodule.py"]
    assert lines_matching(SQL, found) == [f"{found[0]}:1: QUERY = \"SELECT id FROM runs\""]
    assert lines_matching(HOLDS_A_TRANSACTION, found) == [f"{found[0]}:2: ledger.db.commit()"]
