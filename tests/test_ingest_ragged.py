"""Ragged rows (one field too many or too few) are found by counting commas, not by one Python call per row: the
rows appended, rejects.csv and the ledger's rejected rows are those of the text path, reasons and line numbers
included (byte for byte when the file is one chunk; written chunk by chunk, so in another order across chunks).
The speed is measured by bench/bench_ingest.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from risk import catalog, contract, fastread, ingestion
from risk.config import Config, load_config
from risk.ledger import Ledger

GOOD = ",".join(["1"] * len(contract.FEATURES))
LONG_TEXT = "é" * 230  # a ragged value is kept to 200 characters, not bytes
LINES = [
    f"good1,{GOOD},0",
    f"long1,{GOOD},0,9",  # one field too many
    f"short1,{GOOD}",  # one too few
    "",  # an empty line: a row of empty fields, skipped as blank
    "   ",  # spaces only: one field
    f"bad1,{GOOD},7",  # a good shape, a bad value
    f"{LONG_TEXT},{GOOD},1,2,3",
    f"good2,{GOOD},1",
    f"long2,{GOOD},1,,",
] * 8


def ingest(config: Config, content: str) -> tuple[bytes, bytes, list[tuple]]:
    (config.input_folder / "ragged.csv").write_text(",".join(contract.COLUMNS) + "\n" + content, encoding="utf-8")
    ingestion.run_ingestion(config)
    with Ledger(config.ledger_path) as ledger:
        recorded = [(r["file"], r["row"], r["column_name"], r["value"], r["reason"])
                    for r in ledger.files.rejected_rows()]
    out = config.output_folder
    return (out / catalog.FINALDATA).read_bytes(), (out / catalog.REJECTS).read_bytes(), recorded


def text_path_only(*args: object) -> None:
    raise ingestion.NotSplit("test: the text path")


@pytest.mark.parametrize("piece_bytes", [fastread.PIECE_BYTES, 512])
def test_ragged_rows_are_rejected_as_the_text_path_rejects_them(config: Config, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                piece_bytes: int) -> None:
    other = tmp_path / "other"
    shutil.copytree(config.config_path.parent, other)
    content = "\n".join(LINES) + "\n"
    monkeypatch.setattr(fastread, "PIECE_BYTES", piece_bytes)
    with monkeypatch.context() as patched:
        patched.setattr(ingestion, "batches", lambda *args: pytest.fail("the text path read a splittable file"))
        split = ingest(config, content)
    with monkeypatch.context() as patched:
        patched.setattr(ingestion, "split_batches", text_path_only)
        text = ingest(load_config(other / "config.json"), content)
    if piece_bytes > len(content):  # one chunk: the same bytes in the same order
        assert split == text
    else:  # rejections are written chunk by chunk, and the chunks differ: the same lines, the same rows
        assert split[0] == text[0]
        assert sorted(split[1].splitlines()) == sorted(text[1].splitlines())
        assert sorted(split[2], key=str) == sorted(text[2], key=str)
    data, _, recorded = split
    assert data.count(b"\ngood1,") == data.count(b"\ngood2,") == 1  # the repeats are duplicates
    expected = len(contract.COLUMNS)
    assert sorted((r for r in recorded if r[2] is None), key=lambda r: r[1])[:4] == [
        ("ragged.csv", 3, None, f"long1,{GOOD},0,9", f"ragged row: {expected + 1} field(s), expected {expected} as in"
                                                    " the header"),
        ("ragged.csv", 4, None, f"short1,{GOOD}", f"ragged row: {expected - 1} field(s), expected {expected} as in"
                                                 " the header"),
        ("ragged.csv", 6, None, "   ", f"ragged row: 1 field(s), expected {expected} as in the header"),
        ("ragged.csv", 8, None, (LONG_TEXT + f",{GOOD},1,2,3")[:200],
         f"ragged row: {expected + 2} field(s), expected {expected} as in the header"),
    ]
    values = [r for r in recorded if r[2] is not None]
    assert sorted((r[1], r[2], r[3]) for r in values) == [(7 + 9 * k, contract.TARGET, "7") for k in range(8)]
    assert all("expected 0 or 1" in r[4] for r in values)
    assert len(recorded) == 6 * 8
