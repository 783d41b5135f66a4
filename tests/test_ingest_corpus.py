"""The malformed-input corpus: for each kind of bad file or bad row, what was ingested, what was rejected, why.

Row numbers count the header as row 1. The ledger's rejected_rows and the human-readable rejects.csv agree.
"""
from __future__ import annotations

import codecs
import csv
import logging
from pathlib import Path

import pandas as pd
import pytest
from conftest import FIRST, SECOND, THIRD, snapshot

import ingestion as ingestion_cli
from risk import catalog, ingestion
from risk.config import Config
from risk.contract import COLUMNS
from risk.ledger import Ledger

HEADER = ",".join(COLUMNS) + "\n"
GOOD = "good1,10,100,5,1\ngood2,20,200,6,0\n"
BIG = "x" * (ingestion.HEAD_BYTES + 10)


def rows(*lines: str) -> str:
    return HEADER + "".join(f"{line}\n" for line in lines)


# name: (content, ids ingested, rejected rows [(row, column, reason part)], file-level reason part or None)
ROW_CASES = {
    "text_count.csv": (rows("good1,10,100,5,1", "bad,ten,100,5,1"), ["good1"],
                       [(3, FIRST, "not a number")]),
    "negative.csv": (rows("bad,10,100,-5,1", "good1,1,2,3,0"), ["good1"],
                     [(2, THIRD, "negative")]),
    "target.csv": (rows("bad,10,100,5,2", "good1,1,2,3,0", "bad2,1,2,3,yes"), ["good1"],
                   [(2, "exited", "expected 0 or 1"), (4, "exited", "expected 0 or 1")]),
    "missing_value.csv": (rows("good1,1,2,3,0", "bad,,100,5,1", "bad2,1,2,3,"), ["good1"],
                          [(3, FIRST, "missing value"), (4, "exited", "missing value")]),
    "nan_inf.csv": (rows("bad,NaN,1,1,1", "bad2,1,inf,1,0", "bad3,1,1,-Infinity,0", "good1,1,1,1,1"), ["good1"],
                    [(2, FIRST, "NaN"), (3, SECOND, "not finite"),
                     (4, THIRD, "not finite")]),
    "huge.csv": (rows("bad,1e400,1,1,1", "bad2,1,100000000000000000000,1,0", "good1,9007199254740992,1,1,1"),
                 ["good1"], [(2, FIRST, "not finite"), (3, SECOND, "too large")]),
    "header_again.csv": (rows("good1,1,2,3,0", ",".join(COLUMNS), "good2,4,5,6,1"), ["good1", "good2"],
                         [(3, None, "the header repeated mid-file")]),
    "ragged.csv": (rows("good1,1,2,3,0", "short,1,2,3", "long,1,2,3,0,9", "good2,4,5,6,1"), ["good1", "good2"],
                   [(3, None, "ragged row: 4 field(s), expected 5"), (4, None, "ragged row: 6 field(s), expected 5")]),
    "thousands.csv": (rows('bad,"1,234",2,3,0', "good1,1234,2,3,0"), ["good1"],
                      [(2, FIRST, "thousands separator")]),
    "several_bad_values.csv": (rows("bad,-1,x,3,7", "good1,1,2,3,0"), ["good1"],
                               [(2, FIRST, "negative"), (2, SECOND, "not a number"),
                                (2, "exited", "expected 0 or 1")]),
    # tolerated: each of these is ingested whole
    "blank_lines.csv": (HEADER + "\ngood1,1,2,3,0\n\n\nbad,-1,2,3,0\n", ["good1"],
                        [(6, FIRST, "negative")]),
    "extra_reordered.csv": (f" exited , note,{THIRD},{SECOND} ,{FIRST},corporation\n"
                            "1,hello,5,100,10,good1\n", ["good1"], []),
    # a quote after a space is text, not CSV quoting
    "quoted_spaced.csv": (rows('good1,"10", 100 ,5,1', '"good2",20,200,6," 0 "', 'bad, "10" ,1,1,1'),
                          ["good1", "good2"], [(4, FIRST, "not a number")]),
    "target_float.csv": (rows("good1,1,2,3,1.0", "good2,1,2,3,0.0"), ["good1", "good2"], []),
    "crlf.csv": (HEADER.replace("\n", "\r\n") + "good1,1,2,3,0\r\n", ["good1"], []),
    "no_id_column.csv": (",".join(COLUMNS[1:]) + "\n1,2,3,0\n", [""], []),
}
FILE_CASES = {
    "semicolon.csv": (HEADER.replace(",", ";") + "x;1;2;3;0\n", "wrong delimiter: semicolon-separated"),
    "tab.csv": (HEADER.replace(",", "\t") + "x\t1\t2\t3\t0\n", "wrong delimiter: tab-separated"),
    "latin1.csv": ((HEADER + "caf\xe9,1,2,3,0\n").encode("latin-1"), f"not UTF-8 text (byte {len(HEADER) + 3})"),
    "latin1_late.csv": ((HEADER + "good1,1,2,3,0\n" * 5000 + "caf\xe9,1,2,3,0\n").encode("latin-1"),
                        "not a readable UTF-8 CSV"),
    "utf16_no_bom.csv": ((HEADER + GOOD).encode("utf-16-le"), "binary content (NUL bytes)"),
    "binary.csv": (b"\x00\x01\x02\x03PK\x05\x06" * 10, "binary content"),
    "png.csv": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not UTF-8 text (byte 0)"),
    "empty.csv": ("", "empty file"),
    "blank.csv": ("\n\n  \n", "empty file"),
    "bom_only.csv": (b"\xef\xbb\xbf", "empty file"),
    "utf16_bom_only.csv": (b"\xff\xfe", "empty file"),
    "headeronly.csv": (HEADER, "header only, no data rows"),
    "header_and_blanks.csv": (HEADER + "\n\n", "header only, no data rows"),
    "nocolumn.csv": (HEADER.replace(f",{THIRD}", "") + "x,1,2,0\n", f"missing required column(s) ['{THIRD}']"),
    "json.csv": (f'{{"records": [{{"{FIRST}": 1}}]}}\n', "missing required column(s)"),
    "dupcolumn.csv": (HEADER.strip() + ",exited\nx,1,2,3,0,1\n", "duplicated column(s) ['exited']"),
    "all_rows_bad.csv": (rows("a,-1,2,3,0", "b,x,2,3,0"), "no valid row; 2 row(s) broke the contract"),
    "long_header_only.csv": (HEADER.strip() + "," + BIG + "\n", "header only"),
}


def run_on(config: Config, name: str, content: str | bytes) -> tuple[dict, pd.DataFrame]:
    for path in config.input_folder.iterdir():
        path.unlink()
    path = config.input_folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    ingestion_cli.main(["--config", str(config.config_path)])
    with Ledger(config.ledger_path) as ledger:
        outcome = {f["name"]: f for f in ledger.files.records()}[name]
    data = pd.read_csv(config.output_folder / catalog.FINALDATA, dtype=str, keep_default_na=False)
    return outcome, data


def rejects(config: Config, name: str) -> tuple[list[dict], list[dict]]:
    with Ledger(config.ledger_path) as ledger:
        recorded = ledger.files.rejected_rows(name)
    with open(config.output_folder / catalog.REJECTS, encoding="utf-8", newline="") as handle:
        listed = [r for r in csv.DictReader(handle) if r["file"] == name]
    return recorded, listed


@pytest.mark.parametrize("name", sorted(ROW_CASES))
def test_bad_rows_are_dropped_and_recorded_and_good_rows_go_on(config: Config, name: str) -> None:
    content, ids, expected = ROW_CASES[name]
    outcome, data = run_on(config, name, content)
    assert outcome["status"] == "ingested"
    assert data["corporation"].tolist() == ids
    recorded, listed = rejects(config, name)
    assert len(recorded) == len(expected) == len(listed)
    assert outcome["rejected_rows"] == len({row for row, _, _ in expected})
    for got, shown, (row, column, reason) in zip(recorded, listed, expected, strict=True):
        assert (got["row"], got["column_name"]) == (row, column)
        assert reason in got["reason"]
        assert got["file_id"] == outcome["id"]
        assert (shown["row"], shown["column"], shown["reason"]) == (str(row), column or "", got["reason"])


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_a_bad_file_is_set_aside_whole_with_one_log_line(config: Config, caplog, name: str) -> None:
    content, reason = FILE_CASES[name]
    with caplog.at_level(logging.WARNING, logger="risk.ingestion"):
        outcome, data = run_on(config, name, content)
    assert outcome["status"] == "rejected"
    assert reason in outcome["reason"]
    assert data.empty  # nothing of it went in, not even the good rows before a bad byte
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"rejected {name}: {outcome['reason']}"]
    _, listed = rejects(config, name)
    assert listed
    assert listed[-1]["reason"] == outcome["reason"]


def test_utf8_bom_and_utf16_with_bom_are_decoded(config: Config) -> None:
    for name, content in (("bom.csv", codecs.BOM_UTF8 + (HEADER + GOOD).encode()),
                          ("utf16.csv", (HEADER + GOOD.replace("good", "wide")).encode("utf-16"))):
        outcome, data = run_on(config, name, content)
        assert (outcome["status"], outcome["rows"]) == ("ingested", 2)
    assert data["corporation"].tolist() == ["good1", "good2", "wide1", "wide2"]
    assert list(data.columns) == list(COLUMNS)


def test_an_id_that_needs_quoting_survives_the_round_trip(config: Config) -> None:
    _, data = run_on(config, "quotes.csv", rows('"Acme, Inc.",1,2,3,0', '"Say ""hi""",1,2,3,1'))
    assert data["corporation"].tolist() == ["Acme, Inc.", 'Say "hi"']


@pytest.mark.parametrize("kind", ["directory", "outside link", "broken link"])
def test_an_entry_that_is_not_a_regular_file_in_the_folder_is_rejected(config: Config, tmp_path: Path,
                                                                        kind: str) -> None:
    entry = config.input_folder / "x.csv"
    if kind == "directory":
        entry.mkdir()
    elif kind == "outside link":
        (tmp_path / "secret.csv").write_text(HEADER + "secret,1,2,3,0\n", encoding="utf-8")
        entry.symlink_to(tmp_path / "secret.csv")
    else:
        entry.symlink_to(config.input_folder / "nowhere.csv")
    before = snapshot(config.input_folder)
    summary = ingestion.run_ingestion(config)
    outcome = {o["name"]: o for o in summary["files"]}["x.csv"]
    reason = {"directory": "not a regular file", "outside link": "outside the input folder",
              "broken link": "a broken link"}[kind]
    assert outcome["status"] == "rejected"
    assert reason in outcome["reason"]
    assert summary["ingested_files"] == 2
    assert snapshot(config.input_folder) == before
    assert "secret" not in (config.output_folder / catalog.FINALDATA).read_text(encoding="utf-8")


def test_a_run_with_rejections_exits_0_and_says_how_much(config: Config, caplog) -> None:
    (config.input_folder / "mixed.csv").write_text(rows("ok,1,2,3,0", "bad,-1,2,3,0"), encoding="utf-8")
    (config.input_folder / "semicolon.csv").write_text(HEADER.replace(",", ";"), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="risk.ingestion"):
        assert ingestion_cli.main(["--config", str(config.config_path)]) == 0
    summary = caplog.records[-1].getMessage()
    assert "rejected 1 file(s) and 1 row(s)" in summary
