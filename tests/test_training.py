"""training.py: a plain pickled model and its card, written after a fit on finaldata.csv."""
from __future__ import annotations

import json
import logging
import pickle

import pandas as pd
import pytest
from conftest import synthetic_frame, write_frame
from sklearn.linear_model import LogisticRegression

import training as training_cli
from risk import catalog, contract, ingestion, training
from risk.config import Config
from risk.contract import FEATURES, TARGET
from risk.errors import ContractError
from risk.files import sha256_file


def args(config: Config) -> list[str]:
    return ["--config", str(config.config_path)]


def one_class_project(config: Config) -> None:
    for path in config.input_folder.iterdir():
        path.unlink()
    frame = synthetic_frame(20, seed=7).assign(**{TARGET: 0})
    write_frame(frame, config.input_folder / "zeros.csv")
    ingestion.run_ingestion(config)


def test_model_is_a_plain_pickle_that_predicts(config):
    ingestion.run_ingestion(config)
    training.run_training(config)
    with open(config.model_folder / catalog.MODEL, "rb") as handle:
        model = pickle.load(handle)
    assert isinstance(model, LogisticRegression)
    assert model.n_features_in_ == len(FEATURES)
    x, _ = contract.split_xy(synthetic_frame(5, seed=8))
    assert len(model.predict(x)) == 5
    assert set(model.predict(x)) <= {0, 1}


def test_model_card_describes_the_data_and_the_model(config):
    ingestion.run_ingestion(config)
    returned = training.run_training(config)
    card = json.loads((config.model_folder / catalog.CARD).read_text(encoding="utf-8"))
    finaldata = config.output_folder / catalog.FINALDATA
    assert card == returned
    assert card["rows"] == len(pd.read_csv(finaldata)) == 26
    assert card["data_sha256"] == sha256_file(finaldata)
    assert card["model_sha256"] == sha256_file(config.model_folder / catalog.MODEL)
    assert card["features"] == list(FEATURES)


def test_training_is_deterministic(config):
    ingestion.run_ingestion(config)
    first = training.run_training(config)["model_sha256"]
    assert training.run_training(config)["model_sha256"] == first


def test_one_class_data_is_a_contract_error(config):
    one_class_project(config)
    with pytest.raises(ContractError, match=r"only class \[0\] in 'exited'; need both 0 and 1"):
        training.run_training(config)
    assert not (config.model_folder / catalog.MODEL).exists()


def test_main_exits_1_on_one_class_data(config, caplog):
    one_class_project(config)
    with caplog.at_level(logging.INFO):
        assert training_cli.main(args(config)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "need both 0 and 1" in errors[0]


def test_main_exits_1_without_finaldata(config, caplog):
    with caplog.at_level(logging.INFO):
        assert training_cli.main(args(config)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{config.output_folder / catalog.FINALDATA}: training data not found (run ingestion.py first)"]
    assert not (config.model_folder / catalog.CARD).exists()


def test_main_exits_0_and_prints_the_card_with_json(config, capsys):
    ingestion.run_ingestion(config)
    assert training_cli.main([*args(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 26


def test_a_failed_fit_leaves_the_previous_model(config):
    ingestion.run_ingestion(config)
    training.run_training(config)
    before = (config.model_folder / catalog.MODEL).read_bytes()
    write_frame(synthetic_frame(20, seed=7).assign(**{TARGET: 1}), config.output_folder / catalog.FINALDATA)
    with pytest.raises(ContractError):
        training.run_training(config)
    assert (config.model_folder / catalog.MODEL).read_bytes() == before


def test_the_card_carries_the_cross_validated_performance(config):
    ingestion.run_ingestion(config)
    card = training.run_training(config)
    expected = card["expected_performance"]
    assert (expected["n"], expected["cv_folds"]) == (card["rows"], training.CV_FOLDS)
    # the course's 26 rows (15 leavers), 5-fold stratified, seed 0: the out-of-fold calls give tp 12, fp 6, fn 3,
    # tn 5 -> F1 = 2*12 / (2*12 + 6 + 3) = 24/33 = 8/11
    assert expected["confusion"] == {"tp": 12, "fp": 6, "fn": 3, "tn": 5}
    assert expected["f1"] == pytest.approx(8 / 11)
    # the spread of F1 over multinomial(26, [12, 6, 3, 5] / 26), exactly, by summing over its 3654 outcomes (nothing
    # flagged and nothing to find counting as 1): 0.0900; 1000 resamples estimate it within ~2% (0.09 / sqrt(2000))
    assert expected["f1_se"] == pytest.approx(0.0900, abs=0.006)
    assert len(expected["row_log_loss"]) == card["rows"]
    assert expected["log_loss"] == pytest.approx(sum(expected["row_log_loss"]) / card["rows"], abs=1e-4)
    at = expected["at_capacity"]  # out of fold, the capacity scaled to the training data's current clients
    # 26 rows of 26 clients, 11 of them current (their last row says they stay: nciw, lsid, bqlx, zmei from dataset1;
    # corp, gudj, dfgh in both; asdf, xyzz, tyui, lmno from dataset2); 26 rows >= 11 clients: no scaling, so the top
    # min(26, 20 calls) = 20
    assert (at["capacity"], at["n"], at["portfolio"], at["k"]) == (20, 26, 11, 20)
    assert set(expected["calibration"]) == {"brier", "ece", "bins"}


def test_cross_validation_of_separable_data_calls_every_row_right():
    """10 stayers with the first feature 0..9, 10 leavers with it 100..109: every fold's model puts each held-out
    row on its side, so tp 10, fp 0, fn 0, tn 10 and F1 = 2*10 / (2*10 + 0 + 0) = 1."""
    frame = synthetic_frame(20, seed=1).assign(**{FEATURES[0]: [*range(10), *range(100, 110)],
                                                  **{name: 5 for name in FEATURES[1:]}, TARGET: [0] * 10 + [1] * 10})
    expected = training.expected_performance(frame)
    assert expected["confusion"] == {"tp": 10, "fp": 0, "fn": 0, "tn": 10}
    assert expected["f1"] == 1.0
    assert expected["f1_se"] == 0.0  # every resample of [10, 0, 0, 10] has F1 1


def test_no_cross_validation_when_a_class_has_one_row():
    frame = synthetic_frame(20, seed=7).assign(**{TARGET: [1] + [0] * 19})
    assert training.expected_performance(frame) is None


def test_a_large_card_keeps_a_fixed_sample_of_row_losses():
    frame = synthetic_frame(training.CARD_LOSSES + 500, seed=3)
    expected = training.expected_performance(frame)
    assert expected["n"] == training.CARD_LOSSES + 500
    assert len(expected["row_log_loss"]) == training.CARD_LOSSES


def test_cross_validation_runs_on_a_stratified_sample_when_the_data_is_large(monkeypatch) -> None:
    frame = contract.validate_frame(synthetic_frame(3000, seed=5), "synthetic")
    monkeypatch.setattr(training, "CV_ROWS", 1000)
    expected = training.expected_performance(frame)
    assert (expected["n"], expected["sampled_from"]) == (1000, 3000)
    positives = int(frame[TARGET].sum())
    assert sum(expected["confusion"][k] for k in ("tp", "fn")) == round(1000 * positives / 3000)
    assert training.expected_performance(frame.head(900))["sampled_from"] is None  # small data: every row


def test_the_card_keeps_a_bounded_reference_sample_of_the_training_features(monkeypatch) -> None:
    frame = contract.validate_frame(synthetic_frame(500, seed=6), "synthetic")
    monkeypatch.setattr(training, "REFERENCE_ROWS", 100)
    reference = training.reference_sample(frame)
    assert reference["features"] == list(FEATURES)
    assert (reference["rows"], reference["of"], len(reference["values"])) == (100, 500, 100)
    rows = {tuple(row) for row in frame[list(FEATURES)].to_numpy().tolist()}
    assert all(tuple(row) in rows for row in reference["values"])  # training rows, not made-up ones
