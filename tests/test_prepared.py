"""The API's prepared read state: kept up to date at ingestion from the new rows only, equal to what the whole
history says, never ahead of or behind the ledger without saying so."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import synthetic_frame, write_frame

from risk import contract, ingestion, pipeline, prepared, risklist, store
from risk.config import Config
from risk.ledger import Ledger, LedgerReader, read_once


def committed_end(config: Config) -> int | None:
    return read_once(config.ledger_path, LedgerReader.committed_end, None)


def observed(config: Config) -> pd.DataFrame:
    """The observations as the input files hold them: every row of every ingested file (all good here), in the
    order the ledger took the files."""
    with Ledger(config.ledger_path) as ledger:
        names = [f["name"] for f in ledger.files.records(status="ingested")]
    frames = [contract.validate_frame(pd.read_csv(config.input_folder / name, dtype=str, keep_default_na=False,
                                                  na_values=[""]), name) for name in names]
    return pd.concat(frames, ignore_index=True)


def test_summary_statistics_have_a_known_answer() -> None:
    frame = contract.validate_frame(pd.DataFrame({
        contract.ID_COLUMN: ["a", "b", "c", "d"], **{name: [1, 2, 3, 4] for name in contract.FEATURES},
        contract.TARGET: [0, 1, 0, 1]}), "known")
    first = prepared._apply(None, frame.head(1), 10, {})
    state = prepared._apply(first, frame.tail(3), 20, {})  # merged in two steps, as two ingestion runs would
    for name in contract.FEATURES:
        assert prepared.summary(state)[name] == {"mean": 2.5, "median": 2.5, "std": pytest.approx(1.2909944487)}
    assert state.stats["rows"] == 4
    assert state.data_end_byte == 20


def month(rows: list[tuple[str, int]]) -> pd.DataFrame:
    """Rows of (client, exited), every feature 1."""
    return contract.validate_frame(pd.DataFrame({
        contract.ID_COLUMN: [name for name, _ in rows], **{name: 1 for name in contract.FEATURES},
        contract.TARGET: [left for _, left in rows]}), "month")


def test_a_list_is_judged_by_each_clients_next_row() -> None:
    months = [month([("a", 0), ("b", 0), ("c", 0), ("d", 1)]),  # d has left before the list
              month([("a", 0), ("b", 1)]),  # c skips this month
              month([("a", 1), ("c", 1), ("e", 1)])]  # a leaves after its next row said it stayed; e is new
    lists = {4: {"a", "c"}}  # a list recorded on the first month's four rows
    state = None
    for number, frame in enumerate(months):
        state = prepared._apply(state, frame, number, lists)
    watch = state.watches[4]
    assert watch["listed"] == {"a": 0, "c": 1}  # a's next row said stayed; c's next row came a month late
    assert (watch["followed"], watch["left"]) == (3, 2)  # a, b, c were current; d had left; e came later
    assert watch["left_ids"] == ["b", "c"]


def test_ingesting_in_steps_gives_what_the_whole_history_gives(config: Config) -> None:
    ingestion.run_ingestion(config)
    for seed in (1, 2):  # later months: some clients again, with new values
        frame = synthetic_frame(200, seed=seed)
        frame[contract.ID_COLUMN] = [f"client{i % 150}" for i in range(200)]
        write_frame(frame, config.input_folder / f"month{seed}.csv")
        ingestion.run_ingestion(config)
    state = prepared.as_of_committed(config)
    committed = read_once(config.ledger_path, LedgerReader.committed_end, None)
    assert state.data_end_byte == committed == config.finaldata_path.stat().st_size
    assert prepared.as_of_file(config) is state  # read once per version of the file
    history = store.read_history(config)
    expected = history[list(contract.FEATURES)].agg(["mean", "median", "std"])
    for name, numbers in prepared.summary(state).items():
        assert numbers == pytest.approx(expected[name].to_dict())
    observations = observed(config)  # every accepted row, duplicates included, in arrival order
    assert (state.observations, state.stats["rows"]) == (len(observations), len(history)) != (len(history),) * 2
    pd.testing.assert_frame_equal(state.clients, risklist.latest_clients(observations), check_dtype=False)
    named = observations[observations[contract.ID_COLUMN].notna()].reset_index()
    first = named.groupby(contract.ID_COLUMN, sort=False)["index"].min()  # the row a client first appears in
    assert state.clients.set_index(contract.ID_COLUMN)["first_position"].to_dict() == first.to_dict()
    last = named.groupby(contract.ID_COLUMN, sort=False)["index"].max()  # and its newest row
    assert state.clients.set_index(contract.ID_COLUMN)["position"].to_dict() == last.to_dict()


def test_a_run_killed_between_its_commit_and_the_state_is_caught_up_by_the_next_tick(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    ingestion.run_ingestion(config)
    before = prepared.as_of_committed(config)
    monkeypatch.setattr(prepared, "advance", lambda *args: None)  # killed after the ledger's commit
    write_frame(synthetic_frame(50, seed=4), config.input_folder / "late.csv")
    ingestion.run_ingestion(config)
    monkeypatch.undo()
    with pytest.raises(prepared.StaleReadState, match="behind the ledger"):
        prepared.as_of_committed(config)
    assert prepared.as_of_file(config) is None
    assert "the API's prepared read state is behind the ledger" in pipeline.pending_work(config)
    with Ledger(config.ledger_path) as ledger:
        pipeline.refresh_prepared(config, ledger)
    after = prepared.as_of_committed(config)
    assert after.stats["rows"] == before.stats["rows"] + 50
