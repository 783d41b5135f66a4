"""risk/performance.py and risk/summary.py: hand-computed answers, and one answer from every stage that shows a
prediction, an F1, a confusion matrix or a summary statistic: a second implementation anywhere fails here.

The hand-made model: P(leaves) = expit(x - 3), x the first feature, so x = 3 is exactly the threshold (0.5).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import FIRST, write_frame
from sklearn.linear_model import LogisticRegression

from app import create_app
from risk import (
    catalog,
    contract,
    diagnostics,
    drift,
    methods,
    model,
    performance,
    prepared,
    report,
    reporting,
    scoring,
    serving,
    training,
)
from risk.config import Config
from risk.files import atomic_write_bytes, read_json, sha256_file
from risk.ledger import Ledger

# x = 6, 3, 3, 0, 1, 0 -> P = 0.95, 0.5, 0.5, 0.05, 0.12, 0.05 -> flagged 1, 1, 1, 0, 0, 0 (0.5 >= 0.5 is flagged)
AT_THRESHOLD = {"x": [6, 3, 3, 0, 1, 0], "y": [1, 1, 0, 1, 1, 0]}
AT_THRESHOLD_FLAGS = [1, 1, 1, 0, 0, 0]
# tp = rows 1, 2 -> 2; fp = row 3 -> 1; fn = rows 4, 5 -> 2; tn = row 6 -> 1
# F1 = 2 tp / (2 tp + fp + fn) = 4 / (4 + 1 + 2) = 4/7 (with `>` instead: tp 1, fp 0, fn 3 -> 2/5)
AT_THRESHOLD_F1 = 4 / 7
AT_THRESHOLD_MATRIX = [[1, 1], [2, 2]]  # [[tn, fp], [fn, tp]]
# no leaver, x = 0, 1, 2 -> P < 0.5 -> nothing flagged: tp = fp = fn = 0, tn = 3 -> F1 1.0 by the convention
NO_LEAVERS = {"x": [0, 1, 2], "y": [0, 0, 0]}
NO_LEAVERS_MATRIX = [[3, 0], [0, 0]]


# ---- the measures, by hand ---------------------------------------------------------------------------------

def test_the_threshold_rule_flags_a_probability_equal_to_the_threshold() -> None:
    assert performance.flagged([0.0, 0.4999, 0.5, 0.5001, 1.0]).tolist() == [0, 0, 1, 1, 1]
    assert performance.flagged(np.array([0.3, 0.7]), threshold=0.7).tolist() == [0, 1]
    assert performance.threshold_of({}) == performance.THRESHOLD == 0.5
    assert performance.threshold_of({"threshold": 0.3}) == 0.3


def test_confusion_counts_and_matrix_of_known_rows() -> None:
    y, predicted = [1, 1, 0, 0, 1, 1], [1, 0, 1, 0, 1, 0]
    # tp: rows 1, 5 -> 2; fp: row 3 -> 1; fn: rows 2, 6 -> 2; tn: row 4 -> 1
    assert performance.confusion_counts(y, predicted).tolist() == [2, 1, 2, 1]
    assert performance.confusion_matrix(y, predicted) == [[1, 1], [2, 2]]
    stacked = performance.confusion_counts(np.array([y, [0] * 6]), np.array([predicted, [0] * 6]))
    assert stacked.tolist() == [[2, 1, 2, 1], [0, 0, 0, 6]]  # one set per row of 2-D arrays


def test_f1_precision_and_recall_of_explicit_counts() -> None:
    # tp=2, fp=1, fn=2: F1 = 2*2 / (2*2 + 1 + 2) = 4/7; precision 2/3, recall 2/4; 2 (2/3)(1/2) / (2/3 + 1/2) = 4/7
    counts = np.array([2, 1, 2, 1])
    assert float(performance.f1_from_counts(counts)) == pytest.approx(4 / 7)
    assert float(performance.precision_from_counts(counts)) == pytest.approx(2 / 3)
    assert float(performance.recall_from_counts(counts)) == pytest.approx(1 / 2)
    assert performance.f1([1, 1, 0, 0, 1, 1], [1, 0, 1, 0, 1, 0]) == pytest.approx(4 / 7)
    # [5, 5, 0, 0]: 10/15 = 2/3; [0, 3, 2, 10]: 0/5 = 0; [0, 0, 0, 7]: nothing to find, nothing flagged = 1;
    # [4, 0, 0, 1]: 8/8 = 1
    many = np.array([[5, 5, 0, 0], [0, 3, 2, 10], [0, 0, 0, 7], [4, 0, 0, 1]])
    assert performance.f1_from_counts(many).tolist() == pytest.approx([2 / 3, 0.0, 1.0, 1.0])


def test_nothing_flagged_and_nothing_to_find_is_one_and_a_missed_leaver_is_zero() -> None:
    assert performance.f1([0, 0, 0], [0, 0, 0]) == 1.0  # nothing to find, nothing wrongly flagged
    assert performance.f1([1, 0], [0, 0]) == 0.0  # tp 0, fn 1: 0 / 1
    nothing_flagged = np.array([0, 0, 3, 5])  # precision undefined -> 1 (nothing wrongly flagged); recall 0/3
    assert (float(performance.precision_from_counts(nothing_flagged)),
            float(performance.recall_from_counts(nothing_flagged))) == (1.0, 0.0)


def test_row_log_loss_has_known_values_and_stays_finite() -> None:
    losses = performance.row_log_loss(np.array([1, 0, 1, 1]), np.array([0.5, 0.5, 1.0, 0.0]))
    # -ln 0.5 = ln 2 twice; -ln 1 = 0; -ln(1e-15) = 15 ln 10 (clipped, not infinite)
    assert losses.tolist() == pytest.approx([math.log(2), math.log(2), 0.0, 15 * math.log(10)], abs=1e-9)


def test_the_served_model_has_no_predict_of_its_own() -> None:
    """Every 0/1 call comes from the probabilities through performance.flagged; a Model has no other rule."""
    assert not hasattr(model.Model, "predict")


# ---- one answer from every stage ---------------------------------------------------------------------------

def handmade() -> LogisticRegression:
    """P(leaves) = expit(first feature - 3): exactly 0.5 at 3."""
    estimator = LogisticRegression()
    estimator.classes_, estimator.n_features_in_ = np.array([0, 1]), len(contract.FEATURES)
    estimator.coef_ = np.array([[1.0] + [0.0] * (len(contract.FEATURES) - 1)])
    estimator.intercept_ = np.array([-3.0])
    return estimator


def rows(spec: dict) -> pd.DataFrame:
    n = len(spec["x"])
    return pd.DataFrame({contract.ID_COLUMN: [f"c{i}" for i in range(n)], FIRST: spec["x"],
                         **{name: 7 for name in contract.FEATURES if name != FIRST}, contract.TARGET: spec["y"]})


def deploy_handmade(config: Config, spec: dict) -> Config:
    """The hand-made model trained in name, scored on `spec` as testdata.csv and deployed as version 2."""
    import pickle

    from risk import deployment

    estimator, card = handmade(), read_json(config.model_folder / catalog.CARD)
    atomic_write_bytes(config.model_folder / catalog.SAFE_MODEL, model.dumps(estimator))
    atomic_write_bytes(config.model_folder / catalog.MODEL, pickle.dumps(estimator))
    card.update(safe_model_sha256=sha256_file(config.model_folder / catalog.SAFE_MODEL),
                model_sha256=sha256_file(config.model_folder / catalog.MODEL))
    (config.model_folder / catalog.CARD).write_text(json.dumps(card), encoding="utf-8")
    write_frame(rows(spec), config.testdata_path)
    scoring.run_scoring(config)
    deployment.run_deployment(config)
    return config


def every_f1(config: Config) -> dict[str, float]:
    """The F1 of the deployed hand-made model on testdata.csv as each stage shows it."""
    frame = scoring.read_labelled_csv(config.testdata_path)
    x, _ = contract.split_xy(frame)
    app = create_app(config)
    app.config["TESTING"] = True
    with Ledger(config.ledger_path) as ledger:
        content = reporting.build_content(reporting.read_inputs(config, ledger))
    deployed = methods.Deployed(training.load_trained(config), drift.Reference(
        np.array([2, 1, 2, 1]), np.full(6, 0.5), x), 0.5, [0.5], "handmade")
    decided = {name: methods.decide(name, deployed, frame, lambda: None, None, drift.Thresholds(),
                                    training.train_model).decision.evidence["new_f1"]
               for name in ("statistical", "raw")}
    return {"scoring": scoring.f1_of(training.load_trained(config), frame),
            "api /scoring": app.test_client().get("/scoring").json["f1"],
            "report": content["metrics"]["f1"]["value"], "decision (statistical)": decided["statistical"],
            "decision (raw)": decided["raw"]}


def every_matrix(config: Config) -> dict[str, list[list[int]]]:
    """The confusion matrix as the report and diagnostics' predictions show it."""
    frame = scoring.read_labelled_csv(config.testdata_path)
    _, y = contract.split_xy(frame)
    predictions = diagnostics.diagnose(config, timings=False, latest=lambda name: "unknown")["predictions"]
    with Ledger(config.ledger_path) as ledger:
        content = reporting.build_content(reporting.read_inputs(config, ledger))
    return {"report": content["confusion"], "diagnostics": performance.confusion_matrix(y, predictions)}


@pytest.fixture
def at_threshold(deployed: Config) -> Config:
    return deploy_handmade(deployed, AT_THRESHOLD)


def test_every_stage_flags_the_row_at_the_threshold_the_same_way(at_threshold: Config) -> None:
    app = create_app(at_threshold)
    app.config["TESTING"] = True
    body = {"records": rows(AT_THRESHOLD)[list(contract.FEATURES)].to_dict("records")}
    assert app.test_client().post("/prediction", json=body).json["predictions"] == AT_THRESHOLD_FLAGS
    x, _ = contract.split_xy(rows(AT_THRESHOLD))
    answer = serving.answer(serving.Batch(x, None), training.load_trained(at_threshold), 0.5, "2")
    assert answer["predictions"].tolist() == AT_THRESHOLD_FLAGS
    found = diagnostics.diagnose(at_threshold, timings=False, latest=lambda name: "unknown")["predictions"]
    assert found == AT_THRESHOLD_FLAGS


def test_every_f1_is_the_hand_computed_one_with_a_row_at_the_threshold(at_threshold: Config) -> None:
    found = every_f1(at_threshold)
    assert found == dict.fromkeys(found, pytest.approx(AT_THRESHOLD_F1))
    assert (at_threshold.model_folder / catalog.SCORE).read_text(encoding="utf-8") == "0.571429\n"  # latestscore


def test_every_confusion_matrix_is_the_hand_computed_one(at_threshold: Config) -> None:
    assert every_matrix(at_threshold) == {"report": AT_THRESHOLD_MATRIX, "diagnostics": AT_THRESHOLD_MATRIX}


@pytest.mark.slow
def test_the_png_shows_the_hand_computed_confusion_matrix(at_threshold: Config) -> None:
    assert reporting.run_reporting(at_threshold)["confusion_matrix"] == AT_THRESHOLD_MATRIX


def test_the_report_and_the_api_give_the_same_f1_on_a_test_file_with_no_leavers(deployed: Config) -> None:
    """The issue's acceptance: nothing to find and nothing flagged is 1.0 in the API and in the report alike."""
    config = deploy_handmade(deployed, NO_LEAVERS)
    found = every_f1(config)
    assert found == dict.fromkeys(found, 1.0)
    with Ledger(config.ledger_path) as ledger:
        assert reporting.build_content(reporting.read_inputs(config, ledger))["confusion"] == NO_LEAVERS_MATRIX


# ---- one set of summary statistics -------------------------------------------------------------------------

KNOWN = {"mean": 4.0, "median": 3.0, "std": math.sqrt(38 / 3)}
# every feature 1, 2, 4, 9: mean 16/4 = 4; median (2 + 4) / 2 = 3; deviations -3, -2, 0, 5 -> squares 9 + 4 + 0
# + 25 = 38 -> std sqrt(38 / 3) = 3.5590; min 1, max 9; one id of four empty -> missing 1/4; the rest 0


def known_frame() -> pd.DataFrame:
    return contract.validate_frame(pd.DataFrame({
        contract.ID_COLUMN: ["a", None, "c", "d"], **{name: [1, 2, 4, 9] for name in contract.FEATURES},
        contract.TARGET: [0, 1, 0, 1]}), "known", history=True)


def test_diagnostics_the_report_and_the_prepared_state_agree_on_known_statistics(tmp_path) -> None:
    frame = known_frame()
    state = prepared._apply(prepared._apply(None, frame.head(1), 1, {}), frame.tail(3), 2, {})  # two ingestions
    raw = pd.read_csv(write_frame(frame, tmp_path / "finaldata.csv"), dtype=str, keep_default_na=False,
                      na_values=[""])  # as reporting reads finaldata.csv
    missing = {contract.ID_COLUMN: 0.25, **dict.fromkeys((*contract.FEATURES, contract.TARGET), 0.0)}
    for statistics in (diagnostics.summary_statistics(frame), prepared.summary(state)):
        assert statistics == dict.fromkeys(contract.FEATURES, pytest.approx(KNOWN))
    assert diagnostics.missing_share(frame) == prepared.missing_share(state) == missing
    quality = [{"column": name, "missing": missing[name], **dict.fromkeys(("min", "max", "mean", "median"))}
               for name in contract.COLUMNS]
    for entry in quality:
        if entry["column"] in contract.FEATURES:
            entry.update(min=1.0, max=9.0, mean=4.0, median=3.0)
    assert report.data_quality(raw) == prepared.quality(state) == quality


def test_the_statistics_of_an_empty_or_one_value_column_are_nan() -> None:
    from risk import summary

    one = summary.described(summary.column_stats(np.array([5.0, np.nan])), 2)
    assert (one["mean"], one["median"], one["min"], one["max"], one["missing"]) == (5.0, 5.0, 5.0, 5.0, 0.5)
    assert math.isnan(one["std"])  # n - 1 = 0
    empty = summary.described(summary.column_stats(np.array([])), 0)
    assert all(math.isnan(v) for v in empty.values())

