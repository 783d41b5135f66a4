"""The decision record end to end: the course data story, evidence accumulating across ticks, the API's view."""
from __future__ import annotations

import json
import logging
import shutil

import pytest
from conftest import REPO, synthetic_frame, write_frame

from risk import contract, decisions, diagnostics, methods, performance, pipeline, registry
from risk.config import Config
from risk.ledger import Ledger

DEFERRED = "deferred: the data joins the next decision"
# What docs/drift.md says a record holds ("What a decision record holds"), key by key
RECORD = {"new_rows", "reference_rows", "new_f1", "expected_f1", "thresholds", "stream", "method", "reason", "tests",
          "files", "action", "at_capacity", "calibration"}
AT_CAPACITY = {"k", "n", "capacity", "portfolio", "precision", "precision_ci95", "base_rate", "lift", "lift_ci95",
               "draws"}
THRESHOLDS = {"alpha", "min_rows", "min_f1_drop", "min_feature_effect", "alarm_rows"}
STREAM = {"control", "name", "test", "n", "threshold", "alarm_rows", "bets", "nulls", "log_e_before", "statistic",
          "level_end", "alarm", "alarm_row", "state"}
NULLS = {"log_loss": {"reference_mean", "reference_se", "reference_n", "cap", "null_mean"},
         "error": {"reference_rate", "reference_n", "cap", "null_mean"}}
STATE = {"log_e", "rows", "alarms", "model"}
TEST = {"name", "kind", "test", "statistic", "p_value", "p_adjusted", "n", "n_reference", "effect", "alpha",
        "min_effect", "flagged"}
CHALLENGER = {"name", "test", "n", "n_held_out", "draws", "alpha", "margin", "f1_champion", "f1_challenger",
              "f1_difference", "f1_interval", "log_loss_difference", "log_loss_interval", "accuracy_champion",
              "accuracy_challenger", "inferior", "non_inferiority_shown"}


def assert_documented(evidence: dict) -> None:
    """Every number docs/drift.md lists is in the record, and nothing in it is NaN."""
    assert RECORD <= set(evidence)
    assert THRESHOLDS <= set(evidence["thresholds"])
    assert AT_CAPACITY <= set(evidence["at_capacity"])
    assert {"brier", "ece", "bins"} <= set(evidence["calibration"])
    stream = evidence["stream"]
    assert STREAM <= set(stream)
    for family, keys in NULLS.items():
        assert keys <= set(stream["nulls"][family])
    assert STATE <= set(stream["state"])
    assert len(stream["state"]["log_e"]) == 2 * len(stream["bets"])
    for test in evidence["tests"]:
        assert TEST <= set(test)
    json.dumps(evidence, allow_nan=False)


@pytest.fixture(autouse=True)
def offline_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "_latest_cached", lambda name, bucket: "unknown")


def latest(config: Config) -> dict:
    with Ledger(config.ledger_path) as ledger:
        return decisions.latest_decision(ledger)


def flipped_rows(config: Config, n: int, seed: int) -> object:
    """New rows labelled with the opposite of the deployed model's answers: a concept drift."""
    frame = synthetic_frame(n, seed=seed)
    model = registry.load_model(registry.current(config.prod_folder))
    frame[contract.TARGET] = 1 - performance.predictions(model, contract.matrix(contract.validate_frame(frame, "rows")))
    return frame


def decision_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("decision: ")]


@pytest.mark.slow
def test_the_course_story_gives_a_readable_record_and_accumulates(bootstrapped: Config,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    config = bootstrapped  # practice data: its fixture asserts "deployed version 1"
    for source in sorted((REPO / "sourcedata").glob("*.csv")):  # the course's new data arrives
        shutil.copy(source, config.input_folder / source.name)
    with caplog.at_level(logging.INFO):
        assert pipeline.run_fullprocess(config)["action"] == DEFERRED
    record = latest(config)
    rows = record["evidence"]["new_rows"]
    assert (record["verdict"], record["method"], rows) == ("INCONCLUSIVE", "statistical", 26)
    assert record["summary"] == (
        f"{record['created_at']} INCONCLUSIVE by statistical on 26 new row(s) from 2 file(s): 26 new row(s)"
        f" < drift_min_rows 30: waiting for more data -> {DEFERRED}")
    tests = record["evidence"]["tests"]
    assert [t["name"] for t in tests] == ["f1", "log_loss", *contract.FEATURES]
    for test in tests:
        assert {"statistic", "p_value", "p_adjusted", "n", "effect", "alpha", "min_effect", "flagged"} <= set(test)
        assert test["n"] == 26
    assert record["evidence"]["files"] == ["dataset3.csv", "dataset4.csv"]
    json.dumps(record, allow_nan=False)  # what GET /decisions/latest returns
    [line] = decision_lines(caplog)
    assert line.startswith("decision: INCONCLUSIVE by statistical rule: 26 new row(s) < drift_min_rows 30")
    assert line.endswith(f"-> {DEFERRED}")

    assert pipeline.pending_work(config) == []  # deferred data alone does not wake the heavy path
    assert pipeline.run_fullprocess(config) == {"action": "nothing new"}

    write_frame(flipped_rows(config, 40, seed=5), config.input_folder / "dataset5.csv")
    assert pipeline.run_fullprocess(config)["action"] == "deployed version 2"
    record = latest(config)
    assert record["verdict"] == "DRIFT"
    assert record["evidence"]["files"] == ["dataset3.csv", "dataset4.csv", "dataset5.csv"]
    assert record["evidence"]["new_rows"] == 26 + 40  # the deferred rows joined the new ones
    assert "not shown worse" in record["evidence"]["challenger"]["reason"]
    assert_documented(record["evidence"])
    challenger = record["evidence"]["challenger"]["test"]
    assert CHALLENGER <= set(challenger)
    low, high = challenger["f1_interval"]
    assert low <= challenger["f1_difference"] <= high
    assert challenger["margin"] == record["evidence"]["thresholds"]["min_f1_drop"]
    with Ledger(config.ledger_path) as ledger:
        assert not ledger.files.records(status="ingested", pending=True)
        history = decisions.decisions(ledger, limit=10)
    assert [d["verdict"] for d in history] == ["DRIFT", "INCONCLUSIVE", "BOOTSTRAP"]
    assert history[-1]["summary"].endswith("BOOTSTRAP on 2 file(s) -> deployed version 1")
    json.dumps(history, allow_nan=False)


def test_decisions_before_any_and_bad_limits(config: Config) -> None:
    with Ledger(config.ledger_path) as ledger:
        assert decisions.latest_decision(ledger) is None
        assert decisions.decisions(ledger) == []
        for bad in (0, -1, decisions.MAX_LIMIT + 1, "5", True, 2.5):
            with pytest.raises(ValueError, match=f"limit must be an integer from 1 to {decisions.MAX_LIMIT}"):
                decisions.decisions(ledger, bad)


def test_the_decision_compares_with_the_cards_reference_without_reading_the_history(
        deployed: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from risk import training

    def no_history(*args: object) -> None:
        raise AssertionError("the decision read the history")

    monkeypatch.setattr(training, "read_training_data", no_history)
    version = registry.current(deployed.prod_folder)
    new = contract.validate_frame(synthetic_frame(60, seed=12), "new")
    with Ledger(deployed.ledger_path) as ledger:
        model = pipeline.deployed_of(deployed, ledger, version)
    thresholds = pipeline.thresholds_of(deployed)
    decision = methods.decide("statistical", model, new, no_history, None, thresholds, training.train_model).decision
    card = json.loads((version.folder / "trainedmodel.json").read_text(encoding="utf-8"))
    features = [t for t in decision.tests if t["kind"] == "data"]
    assert [t["name"] for t in features] == list(contract.FEATURES)
    assert {t["n_reference"] for t in features} == {card["reference"]["rows"]} == {card["rows"]}


@pytest.mark.slow  # a second or more
def test_the_stream_state_passes_from_one_decision_to_the_next(deployed: Config) -> None:
    """Two calm files on the deployed model: the second decision starts where the first left its e-detector."""
    config = deployed
    write_frame(synthetic_frame(60, seed=21), config.input_folder / "calm1.csv")
    assert pipeline.run_fullprocess(config)["action"] == "kept the deployed model"
    first = latest(config)["evidence"]
    assert_documented(first)
    write_frame(synthetic_frame(60, seed=22), config.input_folder / "calm2.csv")
    pipeline.run_fullprocess(config)
    second = latest(config)["evidence"]
    assert second["stream"]["log_e_before"] == first["stream"]["state"]["log_e"]
    assert second["stream"]["state"]["rows"] == first["stream"]["state"]["rows"] + 60
    assert first["stream"]["state"]["model"] == second["stream"]["state"]["model"]
