"""Property: for any mix of good and bad rows over several files and runs, every good row is ingested exactly
once (first-seen order), every bad row is recorded, and the input folder is byte-identical afterwards."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FOLDERS, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk import catalog, ingestion
from risk.config import load_config
from risk.contract import COLUMNS, MAX_COUNT, SCHEMA, all_good, bad_numbers
from risk.ledger import Ledger

HEADER = ",".join(COLUMNS) + "\n"
BAD_ROWS = ["x,-1,2,3,0", "x,ten,2,3,0", "x,1,2,3,2", "x,,2,3,0", "x,nan,2,3,1", "x,1,inf,3,1", "x,1,2",
            "x,1,2,3,0,9", 'x,"1,000",2,3,0', HEADER.strip(), "x,1e999,2,3,0"]
good_rows = st.tuples(st.sampled_from(["a", "b", "Acme, Inc.", ""]), st.integers(0, 3), st.integers(0, 2),
                      st.sampled_from([0, 7, 10**12]), st.integers(0, 1))
row = st.one_of(good_rows, st.sampled_from(BAD_ROWS))
files = st.lists(st.lists(row, max_size=12), min_size=1, max_size=5)


def line(value: tuple | str) -> str:
    if isinstance(value, str):
        return value
    ident = f'"{value[0]}"' if "," in value[0] else value[0]
    return ",".join([ident, *(str(v) for v in value[1:])])


def project(root: Path):  # -> Config
    for folder in FOLDERS.values():
        (root / folder).mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(FOLDERS), encoding="utf-8")
    return load_config(root / "config.json")


def expected_bad_rows(files: list[list]) -> int:
    """Bad rows recorded: the same bytes as an ingested file are a duplicate (not read); a rejected file's
    copy under another name is judged again."""
    ingested, count = set(), 0
    for content in map(tuple, files):
        if content not in ingested:
            count += sum(isinstance(v, str) for v in content)
            if any(isinstance(v, tuple) for v in content):
                ingested.add(content)
    return count


@pytest.mark.slow
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=files, split=st.integers(0, 5))
def test_good_rows_exactly_once_and_inputs_untouched(files: list[list], split: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        config = project(Path(scratch))
        for number, content in enumerate(files):
            text = HEADER + "".join(line(v) + "\n" for v in content)
            (config.input_folder / f"f{number}.csv").write_text(text, encoding="utf-8")
            if number + 1 == split:  # a second run takes the later files against the first run's history
                ingestion.run_ingestion(config)
        before = snapshot(config.input_folder)
        ingestion.run_ingestion(config)
        assert snapshot(config.input_folder) == before
        expected = list(dict.fromkeys(v for content in files for v in content if isinstance(v, tuple)))
        data = pd.read_csv(config.output_folder / catalog.FINALDATA, dtype=str, keep_default_na=False)
        assert [tuple(r) for r in data.itertuples(index=False)] == [tuple(map(str, v)) for v in expected]
        with Ledger(config.ledger_path) as ledger:
            bad = [r for r in ledger.files.rejected_rows() if r["row"] is not None]
            files_seen = ledger.files.records()
        assert len(bad) == expected_bad_rows(files)
        assert sum(f["rows"] or 0 for f in files_seen) == len(expected)


numbers = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1.0, -1e-9]),
                             st.sampled_from([MAX_COUNT, MAX_COUNT + 1, float(2**63)])), max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(SCHEMA[1:]), numbers)
def test_the_whole_column_check_agrees_with_the_per_value_check(column, values: list[float]) -> None:
    """all_good (reductions, used by the fast paths) says what bad_numbers (a mask per value) says."""
    array = np.asarray(values, dtype="float64")
    assert all_good(column, array) == (not bad_numbers(column, array).any())
