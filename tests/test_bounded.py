"""Training and the read state's rebuild in bounded memory (issue 23 item 4): training reads only the columns it
fits on, as numbers, and agrees with the text path; the card's portfolio counts every observation; a rebuild reads
the history a stretch of files at a time and agrees with the state advanced run by run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, synthetic_frame, write_frame
from test_ingest_observations import A, B, assert_same, rebuilt, snapshot
from test_prepared_segments import clients_frame, mapped_rss_kib

from risk import calllists, contract, inbox, ingestion, pipeline, prepared, training
from risk.config import Config
from risk.errors import ContractError
from risk.ledger import Ledger


def test_training_reads_its_columns_as_numbers_and_agrees_with_the_text_path(config: Config) -> None:
    ingestion.run_ingestion(config)
    x, y = training.read_training_arrays(config.finaldata_path)
    text_x, text_y = contract.split_xy(training.read_training_data(config.finaldata_path))
    assert x.shape == (26, len(contract.FEATURES))
    assert x.flags.c_contiguous
    np.testing.assert_array_equal(x, text_x)
    np.testing.assert_array_equal(y, text_y)
    assert (x.dtype, y.dtype, int(y.sum())) == (np.float64, np.int64, int(text_y.sum()))


def test_a_row_that_breaks_the_contract_is_named_by_the_text_path(config: Config) -> None:
    ingestion.run_ingestion(config)
    with open(config.finaldata_path, "a", encoding="utf-8") as handle:
        handle.write("torn,12,-3,4,0\n")  # pyarrow takes it as numbers; the contract does not
    with pytest.raises(ContractError) as caught:
        training.read_training_arrays(config.finaldata_path)
    assert str(caught.value) == (f"{config.finaldata_path}: row 28, column {contract.FEATURES[1]!r}: expected a "
                                 "finite number >= 0, got '-3' (negative; expected a number >= 0)")


def test_the_cards_portfolio_counts_a_client_whose_latest_row_repeats_an_earlier_one(config: Config) -> None:
    ingestion.run_ingestion(config)
    for number, target in enumerate((0, 1, 0)):  # in, left, back with the first month's very row (a repeat)
        back = pd.DataFrame([("back", 3.0, 30.0, 300.0, target)], columns=list(contract.COLUMNS))
        write_frame(pd.concat([snapshot(A, number), back], ignore_index=True), config.input_folder / f"m{number}.csv")
        ingestion.run_ingestion(config)
    state = prepared.as_of_committed(config)
    from_finaldata = training.current_clients(training.read_training_data(config.finaldata_path))
    assert training.portfolio_of(config, config.finaldata_path) == prepared.population(state) == from_finaldata + 1
    card = training.run_training(config)
    assert card["expected_performance"]["at_capacity"]["portfolio"] == prepared.population(state)
    prepared.path_of(config).unlink()  # no read state: the ids and targets of finaldata.csv alone
    assert training.portfolio_of(config, config.finaldata_path) == from_finaldata


def test_a_rebuild_reads_the_history_a_file_at_a_time_and_agrees_with_the_advanced_state(
        deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    for number, x_state in enumerate((A, B, A, A, B)):
        write_frame(snapshot(x_state, number), deployed.input_folder / f"month{number}.csv")
        ingestion.run_ingestion(deployed)
        with Ledger(deployed.ledger_path) as ledger:
            calllists.record_if_changed(deployed, ledger, None)
    advanced = prepared.as_of_committed(deployed)
    with Ledger(deployed.ledger_path) as ledger:
        points, lists = ledger.files.points(), ledger.call_lists.listed_by_row_count()
    read_up_to = []
    observed = prepared._observed
    monkeypatch.setattr(prepared, "_observed", lambda config, since, to: read_up_to.append(to.observations) or
                        observed(config, since, to))
    monkeypatch.setattr(prepared, "REBUILD_ROWS", 1)
    assert_same(rebuilt(deployed), advanced)
    assert read_up_to == [observations for _, observations in points]  # one file at a time
    assert sorted(lists) == [41, 46, 51, 56, 61]
    assert sorted(advanced.watches) == [41, 46, 51, 56]


def test_the_labelled_quality_of_a_large_batch_is_measured_on_a_stratified_sample(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = synthetic_frame(40, seed=5)
    model = training.train_model(synthetic_frame(60, seed=4))
    whole = pipeline.labelled_quality(config, model, batch)
    assert (whole["at_capacity"]["n"], "sampled_from" in whole) == (40, False)
    monkeypatch.setattr(pipeline, "QUALITY_ROWS", 10)
    sampled = pipeline.labelled_quality(config, model, batch)
    leavers = int(batch[contract.TARGET].sum())
    assert (sampled["at_capacity"]["n"], sampled["sampled_from"]) == (10, 40)
    assert sampled["at_capacity"]["base_rate"] == round(round(10 * leavers / 40) / 10, 4)  # each class its share


def test_a_touched_source_file_is_hashed_once_not_on_every_idle_tick(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    ingestion.run_ingestion(config)
    sources = sorted(config.input_folder.glob("*.csv"))
    for path in sources:  # restored from a backup, or touched: a new mtime, the same content
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    hashed = []
    real = inbox.sha256_file
    monkeypatch.setattr(inbox, "sha256_file", lambda path: hashed.append(path.name) or real(path))
    for _ in range(2):  # what two idle ticks ask (pipeline.pending_work)
        with Ledger(config.ledger_path) as ledger:
            assert inbox.new_entries(config.input_folder, ledger) == []
    assert sorted(hashed) == [path.name for path in sources]  # the first tick only


def test_the_records_a_newer_segment_replaces_are_found_a_chunk_at_a_time_and_their_pages_dropped(
        tmp_path: Path) -> None:
    class Project:  # what prepared reads of a config
        output_folder = tmp_path

    older = [f"client-{i:07d}" for i in range(200_000)]
    newer = [f"client-{i:07d}" for i in range(170_000, 260_000)]  # 30k of the older clients again, 60k new ones
    state = prepared._apply(prepared._apply(None, clients_frame(older), 1, {}), clients_frame(newer), 2, {})
    prepared._write(Project, state)
    state = prepared._read(Project)
    assert [segment.count for segment in state.segments] == [200_000, 90_000]  # not merged: 200k > 2 x 90k
    size = sum(p.stat().st_size for p in prepared.segments_folder(Project).iterdir()) // 1024
    replaced, none = state.shadowed
    np.testing.assert_array_equal(replaced, np.arange(170_000, 200_000))  # keys sort as the zero-padded numbers
    assert len(none) == 0
    assert mapped_rss_kib(prepared.segments_folder(Project)) < size / 10  # the keys read were dropped


HEADER = ",".join(contract.COLUMNS) + "\n"


def test_the_state_takes_the_rows_a_run_accepted_and_agrees_with_reading_them_back(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    read_back = []
    observed = prepared._observed
    monkeypatch.setattr(prepared, "_observed", lambda *args: read_back.append(args[1]) or observed(*args))
    ingestion.run_ingestion(config)  # the course's files: the history begins with this run
    plain = " spaced ,1,2,3,0\n,7,8,9,0\n   ,1.5,2.25,3,0\ndup,1,1,1,0\ndup,1,1,1,0\nc9,0.1,0.2,0.3,1\n"  # fast path
    quoted = '"comma, inc",4,5,6,1\n"quo""te",0.125,2,3,0\nspaced,1,2,3,0\n'  # a quote: the text path
    (config.input_folder / "plain.csv").write_text(HEADER + plain, encoding="utf-8")
    (config.input_folder / "quoted.csv").write_text(HEADER + quoted, encoding="utf-8")
    ingestion.run_ingestion(config)
    assert read_back == []  # neither run read its rows back from finaldata.csv
    state = prepared.as_of_committed(config)
    assert (state.observations, state.stats["rows"]) == (36 + 6 + 3, 26 + 5 + 2)  # `dup` and `spaced` repeat
    names = set(state.clients[contract.ID_COLUMN])
    assert {"spaced", "dup", "c9", "comma, inc", 'quo"te'} <= names
    assert "" not in names
    assert state.stats["named"] == 26 + 5 + 2 - 2  # the empty and the blank id are no name
    assert_same(state, rebuilt(config))
    assert read_back  # the rebuild read them


def test_a_run_on_good_files_never_imports_pandas_nor_pyarrow_compute(config: Config) -> None:
    """pyarrow imports pandas on its first conversion to or from NumPy (0.3 s, a month's read), and
    pyarrow.compute builds a wrapper for each compute function (40-50 ms): the ingestion path converts and calls
    through risk.arrownp instead."""
    for month in (1, 2):  # a second run updates the state built by the first
        new = len(list(config.input_folder.glob("*.csv"))) if month == 1 else 0
        write_frame(synthetic_frame(300, seed=month), config.input_folder / f"month{month}.csv")
        code = ("import sys; from risk.config import load_config; from risk.ingestion import run_ingestion; "
                f"summary = run_ingestion(load_config({str(config.config_path)!r})); "
                "print(summary['ingested_files'], summary['rejected_rows'], 'pandas' in sys.modules, "
                "'pyarrow.compute' in sys.modules)")
        found = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        assert found.stdout.split() == [str(new + 1), "0", "False", "False"]
        assert prepared.as_of_committed(config).observations == 36 + 300 * month


def test_a_run_that_follows_a_recorded_list_never_imports_pandas_nor_pyarrow_compute(bootstrapped: Config) -> None:
    """The watch of a recorded list looks its clients up by key: from a list of ids, without pa.array (which
    imports pandas; 0.25 s of a 50k-row tick onto 1M clients) and without pyarrow.compute."""
    state = prepared.as_of_committed(bootstrapped)
    with Ledger(bootstrapped.ledger_path) as ledger:
        (boundary, listed), = prepared.committed(ledger).lists_by_rows.items()
    assert boundary == state.observations  # the list is watched from this run on
    assert listed
    month = state.clients.loc[:, list(contract.COLUMNS)]
    month[contract.FEATURES[0]] += 1  # every client again, each row new
    write_frame(month, bootstrapped.input_folder / "next_month.csv")
    code = ("import sys; from risk.config import load_config; from risk.ingestion import run_ingestion; "
            f"summary = run_ingestion(load_config({str(bootstrapped.config_path)!r})); "
            "print(summary['ingested_rows'], 'pandas' in sys.modules, 'pyarrow.compute' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert found.stdout.split() == [str(len(month)), "False", "False"]
    watch = prepared.as_of_committed(bootstrapped).watches[boundary]
    assert set(watch["listed"]) == listed
    assert None not in watch["listed"].values()  # each listed client's next row was seen, through the keys
