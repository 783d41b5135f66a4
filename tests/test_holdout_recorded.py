"""The random holdout as recorded with each call list: capacity kept, seeded (the recorded seed redraws the recorded
groups), stable (the same list is never recorded twice, so its groups never change), new settings give a new
list, and /risk, its CSV, the dashboard and the report mark the controls."""
from __future__ import annotations

import contextlib
import io
import json
import sqlite3

import pandas as pd
import pytest
from conftest import write_frame
from test_calllist import ingested, monthly_snapshots

from app import create_app
from risk import calllists, expected, holdout, pipeline, reporting, risklist
from risk.config import Config, load_config
from risk.ledger import MIGRATIONS, Ledger, LedgerReader


def record(config: Config) -> int | None:
    with Ledger(config.ledger_path) as ledger:
        return calllists.record_if_changed(config, ledger, None)


def newest(config: Config) -> dict:
    with LedgerReader(config.ledger_path) as reader:
        return reader.latest_call_lists(1)[0]


def with_settings(config: Config, **settings: object) -> Config:
    data = json.loads(config.config_path.read_text(encoding="utf-8"))
    config.config_path.write_text(json.dumps({**data, **settings}), encoding="utf-8")
    return load_config(config.config_path)


def test_a_recorded_list_keeps_capacity_and_its_seed_redraws_its_groups(deployed: Config) -> None:
    ingested(deployed, monthly_snapshots())
    assert record(deployed) is not None
    listed = newest(deployed)
    groups = [c["group"] for c in listed["clients"]]
    assert len(groups) == holdout.list_size(deployed.call_capacity, deployed.holdout_share) == 25
    assert groups.count("call") == deployed.call_capacity == listed["capacity"]
    assert groups.count("control") == 5
    assert listed["holdout_share"] == deployed.holdout_share
    assert groups == holdout.assign(len(groups), listed["capacity"], listed["holdout_seed"]).tolist()
    calls = [c["probability"] for c in listed["clients"] if c["group"] == "call"]
    assert listed["expected"]["call"] == pytest.approx(expected.expected_hit_rate(calls))
    assert listed["expected"]["all"]["n"] == 25
    assert listed["expected"]["control"]["n"] == 5


def test_the_same_list_is_not_recorded_again_and_new_settings_record_a_new_one(deployed: Config) -> None:
    ingested(deployed, monthly_snapshots())
    first = record(deployed)
    before = newest(deployed)
    assert record(deployed) is None  # nothing changed: the assignment stays as recorded
    assert newest(deployed) == before
    wider = with_settings(deployed, holdout_share=0.5)
    with Ledger(wider.ledger_path) as ledger:
        assert pipeline.list_settings_changed(wider, ledger)  # the idle tick sees it
    assert record(wider) > first
    assert [c["group"] for c in newest(wider)["clients"]].count("control") == 20
    none_held = with_settings(deployed, holdout_share=0, call_capacity=12)
    assert record(none_held) is not None
    listed = newest(none_held)
    assert [c["group"] for c in listed["clients"]] == ["call"] * 12  # share 0: no controls
    assert listed["expected"]["control"] is None
    with Ledger(none_held.ledger_path) as ledger:
        assert not pipeline.list_settings_changed(none_held, ledger)


def test_risk_and_its_csv_mark_the_controls_of_the_recorded_list(deployed: Config) -> None:
    ingested(deployed, monthly_snapshots())
    client = create_app(deployed).test_client()
    unmarked = client.get("/risk").get_json()
    assert unmarked["note"] == risklist.NO_LIST  # nothing recorded yet for this version and data
    assert {(c["group"], c["action"]) for c in unmarked["clients"]} == {(None, None)}
    record(deployed)
    body = client.get("/risk").get_json()
    listed = newest(deployed)
    assert body["note"] is None
    assert body["call_list"]["id"] == listed["id"]
    assert [(c["corporation"], c["group"]) for c in body["clients"]] == [
        (c["corporation"], c["group"]) for c in listed["clients"]]
    actions = [c["action"] for c in body["clients"]]
    assert actions.count("do not call (control)") == 5
    assert actions.count("call") == deployed.call_capacity
    beyond = client.get("/risk?top=40").get_json()["clients"][25:]
    assert {(c["group"], c["action"]) for c in beyond} == {(None, None)}  # not on the recorded list
    table = pd.read_csv(io.StringIO(client.get("/risk", headers={"Accept": "text/csv"}).get_data(as_text=True)),
                        dtype=str, keep_default_na=False)
    assert table["action"].tolist() == actions
    page = client.get("/").get_data(as_text=True)
    assert page.count('<td class="action control">do not call (control)</td>') == 5
    with Ledger(deployed.ledger_path) as ledger:
        content = reporting.build_content(reporting.read_inputs(deployed, ledger))
    assert [c["action"] for c in content["clients"]["clients"]] == actions


def test_a_list_recorded_before_the_holdout_reads_as_all_called(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        for script in MIGRATIONS[:8]:
            db.executescript(script)
        db.execute("INSERT INTO call_lists (created_at, model_version, capacity, data_rows, data_end, clients) VALUES"
                   " ('2024-01-01T00:00:00.000+00:00', 1, 2, 10, 100, ?)",
                   (json.dumps([{"rank": 1, "corporation": "a", "probability": 0.9, "reasons": []}]),))
        db.execute("PRAGMA user_version = 8")
        db.commit()
    with Ledger(path) as ledger:
        old = ledger.call_lists.latest(1)[0]
        assert ledger.call_lists.last_settings() == (2, 0.0)
    assert old["clients"][0]["group"] == "call"
    assert (old["holdout_share"], old["holdout_seed"]) == (0.0, None)
    assert old["expected"] == {"call": None, "control": None, "all": None}


@pytest.mark.slow
def test_a_second_tick_without_change_records_nothing_and_keeps_the_groups(config: Config) -> None:
    write_frame(monthly_snapshots()[0], config.input_folder / "month0.csv")
    pipeline.run_fullprocess(config)  # bootstrap: the first list
    first = newest(config)
    assert pipeline.run_fullprocess(config)["action"] == "nothing new"
    assert newest(config) == first
    with LedgerReader(config.ledger_path) as reader:
        assert len(reader.latest_call_lists(10)) == 1
    changed = with_settings(config, call_capacity=5)
    assert pipeline.run_fullprocess(changed)["call_list"] == first["id"] + 1  # the idle check saw new settings
    assert [c["group"] for c in newest(changed)["clients"]].count("call") == 5
    assert pipeline.run_fullprocess(changed)["action"] == "nothing new"
