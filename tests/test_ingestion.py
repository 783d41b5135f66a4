"""ingestion.py: new client files go into finaldata.csv once, bad files are rejected with a reason."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import THIRD, snapshot, synthetic_frame, write_frame

import ingestion as ingestion_cli
from risk import catalog, inbox, ingestion
from risk.config import Config
from risk.contract import COLUMNS
from risk.ledger import Ledger

HEADER = ",".join(COLUMNS) + "\n"
GOOD_ROW = "acme,10,100,5,1\n"
COURSE_ROWS = 26  # dataset1 (17 rows) + dataset2 (19 rows) share 10 rows


def finaldata(config: Config) -> pd.DataFrame:
    return pd.read_csv(config.output_folder / catalog.FINALDATA)


def listed(config: Config) -> list[str]:
    return (config.output_folder / catalog.INGESTEDFILES).read_text(encoding="utf-8").splitlines()


def ledger_files(config: Config, status: str | None = None) -> list[dict]:
    with Ledger(config.ledger_path) as ledger:
        return ledger.files.records(status=status)


def by_name(summary: dict) -> dict[str, dict]:
    return {outcome["name"]: outcome for outcome in summary["files"]}


def put(config: Config, name: str, text: str | bytes) -> Path:
    path = config.input_folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def clear_input(config: Config) -> None:
    for path in config.input_folder.iterdir():
        path.unlink()


def test_course_files_become_finaldata_and_ingestedfiles(config):
    summary = ingestion.run_ingestion(config)
    assert summary["ingested_files"] == 2
    assert summary["ingested_rows"] == COURSE_ROWS
    data = finaldata(config)
    assert list(data.columns) == list(COLUMNS)
    assert len(data) == COURSE_ROWS
    assert not data.duplicated().any()
    assert listed(config) == ["dataset1.csv", "dataset2.csv"]


def test_ledger_agrees_with_ingestedfiles(config):
    ingestion.run_ingestion(config)
    put(config, "bad.csv", HEADER)
    ingestion.run_ingestion(config)
    assert [f["name"] for f in ledger_files(config, "ingested")] == listed(config)
    assert {f["name"]: f["status"] for f in ledger_files(config)}["bad.csv"] == "rejected"


def test_duplicate_rows_within_a_file_are_dropped(config):
    clear_input(config)
    frame = synthetic_frame(10, seed=1)
    write_frame(pd.concat([frame, frame.iloc[:4]]), config.input_folder / "a.csv")
    summary = ingestion.run_ingestion(config)
    assert summary["ingested_rows"] == 10
    pd.testing.assert_frame_equal(finaldata(config), frame, check_dtype=False)


def test_duplicate_rows_across_files_in_one_run_are_dropped(config):
    clear_input(config)
    frame = synthetic_frame(10, seed=2)
    write_frame(frame.iloc[:6], config.input_folder / "a.csv")
    write_frame(frame.iloc[3:], config.input_folder / "b.csv")
    summary = ingestion.run_ingestion(config)
    assert {n: o["rows"] for n, o in by_name(summary).items()} == {"a.csv": 6, "b.csv": 4}
    pd.testing.assert_frame_equal(finaldata(config), frame, check_dtype=False)


def test_duplicate_rows_across_runs_are_dropped(config):
    ingestion.run_ingestion(config)
    before = finaldata(config)
    write_frame(before.iloc[:5], config.input_folder / "repeat.csv")
    summary = ingestion.run_ingestion(config)
    outcome = by_name(summary)["repeat.csv"]
    assert (outcome["status"], outcome["reason"]) == ("ingested", None)
    assert (outcome["rows"], outcome["duplicate_rows"]) == (0, 5)
    pd.testing.assert_frame_equal(finaldata(config), before)
    fresh = synthetic_frame(3, seed=3)
    write_frame(pd.concat([before.iloc[:2], fresh]), config.input_folder / "later.csv")
    assert ingestion.run_ingestion(config)["ingested_rows"] == 3
    assert len(finaldata(config)) == COURSE_ROWS + 3
    assert listed(config) == ["dataset1.csv", "dataset2.csv", "repeat.csv", "later.csv"]


def test_a_second_run_ingests_nothing_new(config):
    ingestion.run_ingestion(config)
    before = snapshot(config.output_folder), finaldata(config)
    summary = ingestion.run_ingestion(config)
    assert summary["files"] == []
    assert summary["ingested_rows"] == 0
    after = snapshot(config.output_folder)
    unchanged = {k: v for k, v in before[0].items() if "ledger" not in k}
    assert {k: v for k, v in after.items() if "ledger" not in k} == unchanged
    pd.testing.assert_frame_equal(finaldata(config), before[1])
    assert len(ledger_files(config)) == 2


def test_same_bytes_under_a_new_name_is_a_duplicate(config):
    ingestion.run_ingestion(config)
    shutil.copy(config.input_folder / "dataset1.csv", config.input_folder / "copy.csv")
    outcome = by_name(ingestion.run_ingestion(config))["copy.csv"]
    assert outcome["status"] == "duplicate"
    assert "dataset1.csv" in outcome["reason"]
    assert "copy.csv" not in listed(config)
    assert len(finaldata(config)) == COURSE_ROWS


def test_same_bytes_twice_in_one_run_is_ingested_once(config):
    clear_input(config)
    write_frame(synthetic_frame(5, seed=4), config.input_folder / "a.csv")
    shutil.copy(config.input_folder / "a.csv", config.input_folder / "b.csv")
    outcomes = by_name(ingestion.run_ingestion(config))
    assert (outcomes["a.csv"]["status"], outcomes["b.csv"]["status"]) == ("ingested", "duplicate")
    assert listed(config) == ["a.csv"]


def test_a_changed_file_under_the_same_name_is_ingested_as_new(config):
    clear_input(config)
    path = write_frame(synthetic_frame(4, seed=5), config.input_folder / "monthly.csv")
    ingestion.run_ingestion(config)
    write_frame(synthetic_frame(7, seed=6), path)
    outcome = by_name(ingestion.run_ingestion(config))["monthly.csv"]
    assert (outcome["status"], outcome["rows"]) == ("ingested", 7)
    assert len(finaldata(config)) == 11
    assert listed(config) == ["monthly.csv", "monthly.csv"]


BAD_FILES = {
    "latin1.csv": (HEADER.encode() + "caf\xe9,1,2,3,0\n".encode("latin-1"), "not UTF-8"),
    "nocolumn.csv": (HEADER.replace(f",{THIRD}", "") + "x,1,2,0\n", THIRD),
    "empty.csv": ("", "empty file"),
    "headeronly.csv": (HEADER, "header only"),
    "allbad.csv": (HEADER + "acme2,ten,100,5,1\nacme,10,100,-5,1\n", "no valid row; 2 row(s) broke the contract"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_rejected_with_a_reason_and_good_files_still_go_in(config, caplog, name):
    content, problem = BAD_FILES[name]
    put(config, name, content)
    with caplog.at_level(logging.WARNING, logger="risk.ingestion"):
        summary = ingestion.run_ingestion(config)
    outcome = by_name(summary)[name]
    assert outcome["status"] == "rejected"
    assert problem in outcome["reason"]
    assert name in outcome["reason"]
    assert summary["ingested_files"] == 2
    assert listed(config) == ["dataset1.csv", "dataset2.csv"]
    assert any(name in r.getMessage() and problem in r.getMessage() for r in caplog.records)


def make_directory(config: Config, tmp_path: Path) -> str:
    (config.input_folder / "folder.csv").mkdir()
    return "not a regular file"


def make_outside_link(config: Config, tmp_path: Path) -> str:
    outside = tmp_path / "secret.csv"
    outside.write_text(HEADER + "secret,10,100,5,1\n", encoding="utf-8")
    (config.input_folder / "link.csv").symlink_to(outside)
    return "outside the input folder"


@pytest.mark.parametrize("make", [make_directory, make_outside_link])
def test_an_entry_that_is_not_a_file_in_the_folder_is_rejected(config, tmp_path, caplog, make):
    problem = make(config, tmp_path)
    with caplog.at_level(logging.WARNING, logger="risk.ingestion"):
        summary = ingestion.run_ingestion(config)
    rejected = [o for o in summary["files"] if o["status"] == "rejected"]
    assert len(rejected) == 1
    assert problem in rejected[0]["reason"]
    assert summary["ingested_files"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"rejected {rejected[0]['name']}: {rejected[0]['reason']}"]
    assert "secret" not in finaldata(config)["corporation"].tolist()


@pytest.mark.parametrize(("name", "shown", "problem"), [
    (os.fsdecode(b"donn\xe9es.csv"), "donn\\xe9es.csv", "its name is not UTF-8; rename it"),
    ("new\nline.csv", "new\nline.csv", "its name holds a control character"),
])
def test_a_file_whose_name_cannot_be_listed_is_set_aside_and_the_others_go_in(config, name, shown, problem):
    (config.input_folder / name).write_text(HEADER + GOOD_ROW, encoding="utf-8")
    summary = ingestion.run_ingestion(config)
    assert summary["ingested_files"] == 2  # the course files
    assert [(o["name"], o["status"]) for o in summary["files"] if o["status"] != "ingested"] == [(shown, "rejected")]
    assert problem in by_name(summary)[shown]["reason"]
    assert ingestion.run_ingestion(config)["files"] == []  # set aside once, not retried on every tick
    assert (config.input_folder / name).read_text(encoding="utf-8") == HEADER + GOOD_ROW


def test_a_lost_ledger_stops_ingestion_before_it_cuts_the_history(config, caplog):
    ingestion.run_ingestion(config)
    history = (config.output_folder / catalog.FINALDATA).read_bytes()
    config.ledger_path.rename(config.ledger_path.with_suffix(".lost"))
    put(config, "more.csv", HEADER + GOOD_ROW)
    assert ingestion_cli.main(["--config", str(config.config_path)]) == 1
    assert (config.output_folder / catalog.FINALDATA).read_bytes() == history
    assert "has no record of any ingestion: restore the ledger from a backup" in caplog.text


def test_a_rejected_file_is_not_retried(config):
    put(config, "bad.csv", HEADER)
    assert ingestion.run_ingestion(config)["rejected_files"] == 1
    again = ingestion.run_ingestion(config)
    assert again["files"] == []
    assert [f["name"] for f in ledger_files(config, "rejected")] == ["bad.csv"]


def test_the_input_folder_is_left_byte_identical(config):
    put(config, "bad.csv", b"\xff\xfe" + HEADER.encode())
    shutil.copy(config.input_folder / "dataset2.csv", config.input_folder / "copy.csv")
    before = snapshot(config.input_folder)
    stats = {p.name: p.stat().st_mtime_ns for p in config.input_folder.iterdir()}
    ingestion.run_ingestion(config)
    ingestion.run_ingestion(config)
    assert snapshot(config.input_folder) == before
    assert {p.name: p.stat().st_mtime_ns for p in config.input_folder.iterdir()} == stats


def args(config: Config) -> list[str]:
    return ["--config", str(config.config_path)]


def test_main_exits_0_when_something_was_ingested(config):
    put(config, "bad.csv", HEADER)
    assert ingestion_cli.main(args(config)) == 0
    assert listed(config) == ["dataset1.csv", "dataset2.csv"]


def test_main_exits_1_when_everything_new_was_rejected(config, caplog):
    ingestion.run_ingestion(config)
    put(config, "bad.csv", HEADER)
    with caplog.at_level(logging.INFO):
        assert ingestion_cli.main(args(config)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["no file ingested: 1 file(s) rejected"]


def test_main_exits_1_for_an_empty_input_folder(config, caplog):
    clear_input(config)
    with caplog.at_level(logging.INFO):
        assert ingestion_cli.main(args(config)) == 1
    assert any("no .csv files" in r.getMessage() for r in caplog.records)
    assert not (config.output_folder / catalog.FINALDATA).exists()


def test_main_exits_1_for_a_missing_input_folder(config, caplog):
    shutil.rmtree(config.input_folder)
    with caplog.at_level(logging.INFO):
        assert ingestion_cli.main(args(config)) == 1
    assert any("'input_folder_path' does not exist" in r.getMessage() for r in caplog.records)


def test_an_unchanged_stat_is_not_rehashed(config, monkeypatch):
    ingestion.run_ingestion(config)
    calls = []
    monkeypatch.setattr("risk.inbox.sha256_file", lambda path: calls.append(path) or "x")
    assert ingestion.run_ingestion(config)["files"] == []
    assert calls == []
    os.utime(config.input_folder / "dataset1.csv", ns=(1, 1))
    ingestion.run_ingestion(config)
    assert calls == [config.input_folder / "dataset1.csv"]


def test_a_file_unreadable_once_is_ingested_when_readable(config, monkeypatch):
    real = inbox.sha256_file

    def denied(path: Path) -> str:
        if path.name == "dataset2.csv":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(inbox, "sha256_file", denied)
    outcome = by_name(ingestion.run_ingestion(config))["dataset2.csv"]
    assert (outcome["status"], outcome["reason"]) == ("rejected", "unreadable (Permission denied)")
    monkeypatch.undo()
    outcome = by_name(ingestion.run_ingestion(config))["dataset2.csv"]
    assert (outcome["status"], outcome["rows"]) == ("ingested", 9)
    assert listed(config) == ["dataset1.csv", "dataset2.csv"]
