"""The fast path (risk/fastread.py): for any input it leaves the same finaldata.csv, rejects, ledger and index as
the text path alone, byte for byte; a file it cannot take whole is read again as text."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from conftest import FIRST, FOLDERS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from risk import catalog, contract, fastread, ingestion, store
from risk.config import Config, load_config
from risk.contract import COLUMNS
from risk.ledger import Ledger

HEADER = ",".join(COLUMNS) + "\n"
PLAIN_IDS = ["a", "b", "s1c2", "café", "0", "x y"]
ODD_IDS = [" a", "a ", "\u00a0x", "x\ty", '"Acme, Inc."', '"Say ""hi"""', '"q"', '"x\ny"', "", "007",
           "\ufeffa"]  # a byte-order mark opening a row (or a piece) is text, not a mark to skip
PLAIN_NUMBERS = ["0", "7", "10", "100", "9007199254740991"]
TRICKY = ["1e2", "9007199254740993", "007", "00"]  # good, written otherwise, and told apart by one check each
ODD_NUMBERS = ["+5", "-0", "5.0", "5.5", " 5", "9007199254740992", '"12"', "\ufeff5", *TRICKY]
BAD_NUMBERS = ["", "nan", "inf", "x", '"1,000"', "-1", "1e400"]
LAYOUTS = {"contract": list(COLUMNS), "reordered": [*COLUMNS[1:], COLUMNS[0]], "extra": [*COLUMNS, "note"],
           "no id": list(COLUMNS[1:])}


def rows_of(ids: list[str], numbers: list[str], targets: list[str]) -> st.SearchStrategy:
    return st.tuples(st.sampled_from(ids), *[st.sampled_from(numbers)] * 3, st.sampled_from(targets))


plain = rows_of(PLAIN_IDS, PLAIN_NUMBERS, ["0", "1"])
good = rows_of(PLAIN_IDS + ODD_IDS, PLAIN_NUMBERS + ODD_NUMBERS, ["0", "1", "1.0", " 1", '"0"'])
anything = rows_of(PLAIN_IDS + ODD_IDS, PLAIN_NUMBERS + ODD_NUMBERS + BAD_NUMBERS, ["0", "1", "2", ""])
one_tricky = st.sampled_from(TRICKY).flatmap(  # a file as written but for one kind of tricky number
    lambda odd: st.lists(st.one_of(plain, rows_of(PLAIN_IDS, [*PLAIN_NUMBERS, odd], ["0", "1"])), max_size=30))
rows = st.one_of(one_tricky, *(st.lists(st.one_of(plain, kind), max_size=30) for kind in (plain, good, anything)))
a_file = st.tuples(st.sampled_from(["contract", *sorted(LAYOUTS)]), rows, st.sampled_from(["\n", "\n", "\r\n"]),
                   st.booleans())


def text_of(layout: str, rows: list[tuple], newline: str, last_newline: bool) -> str:
    """A CSV in one of LAYOUTS; a row's fields are placed by column name, the extra column holds "n"."""
    names = LAYOUTS[layout]
    lines = [",".join(names)]
    for values in rows:
        cells = dict(zip(COLUMNS, values, strict=True))
        lines.append(",".join(cells.get(name, "n") for name in names))
    return newline.join(lines) + (newline if last_newline else "")


def project(root: Path) -> Config:
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(FOLDERS), encoding="utf-8")
    return load_config(root / "config.json")


def outputs(config: Config) -> dict:
    """Everything a run leaves: the appended files' bytes, the ledger's records and the index's keys."""
    with Ledger(config.ledger_path) as ledger:
        files = [{k: f[k] for k in ("name", "status", "reason", "rows", "rejected_rows", "data_start", "data_end",
                                    "rejects_end")} for f in ledger.files.records()]
        rejected = [{k: r[k] for k in ("file", "row", "column_name", "value", "reason")}
                    for r in ledger.files.rejected_rows()]
        keys = store.load_index(config, ledger).keys().tolist()
    return {"finaldata": (config.output_folder / catalog.FINALDATA).read_bytes(),
            "rejects": (config.output_folder / catalog.REJECTS).read_bytes(), "files": files,
            "rejected": rejected, "keys": keys}


def ingest(root: Path, runs: list[list[str]], fast: bool) -> dict:
    config = project(root)
    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(ingestion, "fast_rows", lambda *args: None)
        for number, run in enumerate(runs):
            for index, text in enumerate(run):
                (config.input_folder / f"r{number}f{index}.csv").write_bytes(text.encode("utf-8"))
            if run:
                ingestion.run_ingestion(config)
    return outputs(config)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(a_file, min_size=1, max_size=6), split=st.integers(0, 6),
       piece=st.sampled_from([96, 200, 1 << 22]))
@example(files=[("contract", [("a", "1e2", "7", "10", "1")], "\n", True)], split=0, piece=1 << 22)
@example(files=[("contract", [("a", "9007199254740993", "7", "10", "1")], "\n", True)], split=0, piece=1 << 22)
@example(files=[("contract", [("a", "007", "7", "10", "1")], "\n", True)], split=0, piece=1 << 22)
def test_the_fast_path_leaves_what_the_text_path_leaves(files: list[tuple], split: int, piece: int) -> None:
    texts = [text_of(*spec) for spec in files]
    runs = [texts[:split], texts[split:]]  # the second run meets the first one's history
    with tempfile.TemporaryDirectory() as scratch, pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastread, "PIECE_BYTES", piece)
        assert ingest(Path(scratch) / "fast", runs, fast=True) == ingest(Path(scratch) / "text", runs, fast=False)


def test_a_file_that_breaks_in_a_later_piece_is_read_again_as_text(config, monkeypatch):
    monkeypatch.setattr(fastread, "PIECE_BYTES", 128)
    good = [f"c{n},{n},{2 * n},3,{n % 2}\n" for n in range(40)]
    (config.input_folder / "late.csv").write_text(HEADER + "".join(good) + "bad,-1,2,3,0\n", encoding="utf-8")
    summary = ingestion.run_ingestion(config)
    outcome = {o["name"]: o for o in summary["files"]}["late.csv"]
    assert (outcome["rows"], outcome["rejected_rows"]) == (40, 1)
    text = (config.output_folder / catalog.FINALDATA).read_text(encoding="utf-8")
    assert text.count("\nc0,0,0,3,0\n") == 1
    assert text.endswith("c39,39,78,3,1\n")
    with Ledger(config.ledger_path) as ledger:
        assert [(r["row"], r["column_name"]) for r in ledger.files.rejected_rows("late.csv")] == [(42, FIRST)]


@pytest.mark.parametrize(("body", "expected"), [
    ("a,1\nb,2\n", [b"a,1\nb,2\n"]),
    ("a,1\nb,2", [b"a,1\n", b"b,2\n"]),  # the last line gets its newline
    ("a,1\r\nb,2\r\n", [b"a,1\r\nb,2\r\n"]),
    ("", []),
    ('a,1\n"b\nc",2\n', [None]),  # a quote: a newline may be inside a value
    ("a," + "9" * 200 + "\n", [None]),  # longer than a piece: the text reader may refuse it
])
def test_pieces_end_at_a_newline_and_give_up_where_a_cut_could_fall_inside_a_row(tmp_path, monkeypatch, body,
                                                                                   expected):
    monkeypatch.setattr(fastread, "PIECE_BYTES", 64)
    path = tmp_path / "x.csv"
    path.write_text("id,n\n" + body, encoding="utf-8")
    assert list(fastread.pieces(path)) == expected


def test_pieces_cut_a_long_file_at_line_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(fastread, "PIECE_BYTES", 64)
    body = "".join(f"row{n},{n * 7}\n" for n in range(200))
    path = tmp_path / "x.csv"
    path.write_text("id,n\n" + body, encoding="utf-8")
    cut = list(fastread.pieces(path))
    assert b"".join(cut).decode() == body
    assert all(piece.endswith(b"\n") and len(piece) < 2 * 64 for piece in cut)


def test_a_piece_is_never_longer_than_the_text_readers_block():
    assert fastread.PIECE_BYTES <= ingestion.BLOCK_BYTES


@pytest.mark.parametrize("piece", [64, 1 << 22])
def test_a_byte_order_mark_opening_a_row_stays_text_where_a_piece_begins(config, monkeypatch, piece):
    """Arrow skips a byte-order mark at the start of what it reads; a piece may start at any row."""
    monkeypatch.setattr(fastread, "PIECE_BYTES", piece)
    (config.input_folder / "a.csv").write_bytes((HEADER + "\ufeffAcme,1,2,3,0\n").encode())
    (config.input_folder / "b.csv").write_bytes((",".join(contract.COLUMNS[1:]) + "\n"
                                                 "\ufeff5,2,3,0\n1,2,3,1\n").encode())
    outcomes = {o["name"]: o for o in ingestion.run_ingestion(config)["files"]}
    data = (config.output_folder / catalog.FINALDATA).read_bytes()
    assert b"\n\xef\xbb\xbfAcme,1,2,3,0\n" in data  # as the text path leaves it
    assert b"\n,1,2,3,1\n" in data
    assert (outcomes["b.csv"]["rows"], outcomes["b.csv"]["rejected_rows"]) == (1, 1)
