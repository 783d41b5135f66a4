"""Every accepted row is an observation of its client (issue 23 item 1): finaldata.csv keeps the course's
de-duplication, while the prepared read state sees every accepted row in arrival order, duplicates included; a
re-sent file counts once; a rebuilt state agrees with the advanced one; a run killed between its payload and its
record leaves the state as the ledger says and the next run recovers."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, write_frame
from test_prepared import observed

from risk import catalog, contract, ingestion, pipeline, prepared, risklist, store
from risk.config import Config
from risk.ledger import Ledger

A, B = (5.0, 50.0, 500.0, 0), (7.0, 70.0, 700.0, 0)  # client x's two states: features, then exited


def snapshot(x_state: tuple, month: int, others: int = 3) -> pd.DataFrame:
    """Month `month`'s snapshot: client x in `x_state`, `others` clients whose rows never change and one whose row
    does (so that no month's file is byte for byte an earlier one's: that would be a re-sent file)."""
    rows = [("x", *x_state), *((f"steady{i}", 1.0 + i, 10.0 + i, 100.0 + i, 0) for i in range(others)),
            ("mover", float(month), 1.0, 1.0, 0)]
    return pd.DataFrame(rows, columns=list(contract.COLUMNS))


def ingest_months(config: Config, states: list[tuple]) -> None:
    for number, state in enumerate(states):
        write_frame(snapshot(state, number), config.input_folder / f"month{number}.csv")
        ingestion.run_ingestion(config)


def latest_of(state: prepared.State, name: str) -> tuple:
    row = state.clients.set_index(contract.ID_COLUMN).loc[name]
    return (*(float(row[f]) for f in contract.FEATURES), int(row[contract.TARGET]))


def rebuilt(config: Config) -> prepared.State:
    """The state built again from the whole history (as after an upgrade), through the pipeline's own call."""
    prepared.path_of(config).unlink()
    with Ledger(config.ledger_path) as ledger:
        pipeline.refresh_prepared(config, ledger)
    return prepared.as_of_committed(config)


def assert_same(one: prepared.State, other: prepared.State) -> None:
    pd.testing.assert_frame_equal(one.clients, other.clients)
    assert (one.observations, one.data_end_byte, one.watches) == (other.observations, other.data_end_byte,
                                                                  other.watches)
    for name, numbers in prepared.summary(one).items():  # merged in other steps: equal up to rounding
        assert numbers == pytest.approx(prepared.summary(other)[name])


def test_states_a_b_a_give_a_as_the_latest_and_finaldata_keeps_the_course_de_duplication(config: Config) -> None:
    ingestion.run_ingestion(config)  # the course's files first
    course = len(store.read_history(config))
    ingest_months(config, [A, B, A])
    state = prepared.as_of_committed(config)
    assert latest_of(state, "x") == A
    history = store.read_history(config)
    x_rows = history[history[contract.ID_COLUMN] == "x"]
    assert len(x_rows) == 2  # A and B once each: the third month's A is a duplicate there
    assert len(history) == course + 2 + 3 + 3  # x's two states, the steady clients' one row, the mover's three
    assert state.stats["rows"] == len(history)  # the summary statistics stay those of finaldata.csv
    assert state.observations == len(observed(config)) == 36 + 3 * 5  # the course's 36 rows, then 3 months of 5
    steady = state.clients.set_index(contract.ID_COLUMN).loc["steady0"]
    assert steady["position"] == state.observations - 4  # seen again last month, though never changed
    pd.testing.assert_frame_equal(state.clients, risklist.latest_clients(observed(config)), check_dtype=False)


def test_the_course_rows_still_give_26_in_finaldata_and_36_observations(config: Config) -> None:
    summary = ingestion.run_ingestion(config)
    assert (summary["ingested_rows"], summary["duplicate_rows"]) == (26, 10)
    state = prepared.as_of_committed(config)
    assert (state.stats["rows"], state.observations) == (26, 36)
    parts = sorted(p.name for p in (config.output_folder / catalog.REPEATS).iterdir())
    with Ledger(config.ledger_path) as ledger:
        assert parts == sorted(name for name, _ in ledger.files.repeat_parts())
        assert ledger.files.committed_point() == (config.finaldata_path.stat().st_size, 36)


def test_a_re_sent_file_counts_once(config: Config) -> None:
    ingest_months(config, [A])
    before = prepared.as_of_committed(config)
    sent = config.input_folder / "month0.csv"
    (config.input_folder / "month0-again.csv").write_bytes(sent.read_bytes())  # the same content re-sent
    summary = ingestion.run_ingestion(config)
    assert (summary["duplicate_files"], summary["ingested_files"]) == (1, 0)
    after = prepared.as_of_committed(config)
    assert_same(after, before)


def test_a_rebuilt_state_agrees_with_the_advanced_one(config: Config) -> None:
    ingest_months(config, [A, B, A, A, B])
    advanced = prepared.as_of_committed(config)
    assert latest_of(advanced, "x") == B
    assert_same(rebuilt(config), advanced)


KILLED_AFTER_PAYLOAD = """import os, sys
import risk.ingestion as ingestion
synced = ingestion.sync_payload
def killed(*args, **kwargs):
    synced(*args, **kwargs)
    os._exit(137)  # a SIGKILL once the payload is durable, before the ledger's commit records it
ingestion.sync_payload = killed
import ingestion as script
raise SystemExit(script.main(["--config", sys.argv[1]]))
"""


@pytest.mark.system
def test_a_run_killed_between_its_payload_and_its_record_leaves_the_state_consistent_and_the_next_run_recovers(
        config: Config) -> None:
    ingest_months(config, [A, B])
    before = prepared.as_of_committed(config)
    write_frame(snapshot(A, 2), config.input_folder / "month2.csv")  # every row a repeat but the mover's
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_PAYLOAD, str(config.config_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == 137, killed.stderr
    stray = list((config.output_folder / catalog.REPEATS).iterdir())
    assert len(stray) == 1 + len(before_parts(config))  # the killed run's part, durable but named by no record
    assert_same(prepared.as_of_committed(config), before)  # nothing of the killed run is visible
    ingestion.run_ingestion(config)
    after = prepared.as_of_committed(config)
    assert latest_of(after, "x") == A
    assert after.observations == before.observations + 5 == len(observed(config))
    assert sorted(p.name for p in (config.output_folder / catalog.REPEATS).iterdir()) == before_parts(config)
    assert_same(rebuilt(config), after)


def before_parts(config: Config) -> list[str]:
    with Ledger(config.ledger_path) as ledger:
        return sorted(name for name, _ in ledger.files.repeat_parts())
