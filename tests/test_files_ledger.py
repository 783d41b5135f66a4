"""risk.files (atomic writes, the single-flight lock) and risk.ledger (schema, decisions)."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import has_pending, record_file, runs

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
