"""scoring.py: F1 of the trained model on the test data, in latestscore.txt and in the ledger."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import COURSE_F1, runs

import scoring as scoring_cli
from risk import catalog, ingestion, scoring, training
from risk.config import Config
from risk.contract import TARGET
from risk.files import sha256_file
from risk.ledger import Ledger


def args(config: Config) -> list[str]:
    return ["--config", str(config.config_path)]


@pytest.fixture
def trained(config: Config) -> Config:
    ingestion.run_ingestion(config)
    training.run_training(config)
    return config




def test_latestscore_is_the_course_known_f1_on_the_test_data(trained):
    result = scoring.run_scoring(trained)
    text = (trained.model_folder / catalog.SCORE).read_text(encoding="utf-8")
    assert text == f"{COURSE_F1:.6f}\n"
    assert result["f1"] == pytest.approx(COURSE_F1)
    assert result["rows"] == len(pd.read_csv(trained.test_data / catalog.TESTDATA)) == 5


def test_the_score_is_recorded_in_the_ledger_for_this_model(trained):
    result = scoring.run_scoring(trained)
    model_sha = sha256_file(trained.model_folder / catalog.MODEL)
    assert result["model_sha256"] == model_sha
    with Ledger(trained.ledger_path) as ledger:
        assert ledger.scores.latest_f1(model_sha) == pytest.approx(result["f1"])
        assert ledger.scores.latest_f1("0" * 64) is None
        assert runs(ledger, 1)[0]["stage"] == "scoring"
        assert runs(ledger, 1)[0]["outcome"] == "ok"


def test_main_exits_1_without_a_model(config, caplog):
    ingestion.run_ingestion(config)
    with caplog.at_level(logging.INFO):
        assert scoring_cli.main(args(config)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{config.model_folder / catalog.SAFE_MODEL}: model not found (run training.py first)"]
    assert not (config.model_folder / catalog.SCORE).exists()


def test_main_exits_1_without_test_data(trained, caplog):
    (trained.test_data / catalog.TESTDATA).unlink()
    with caplog.at_level(logging.INFO):
        assert scoring_cli.main(args(trained)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(trained.test_data / catalog.TESTDATA) in errors[0]
    with Ledger(trained.ledger_path) as ledger:
        assert runs(ledger, 1)[0]["outcome"] == "failed"


def test_main_exits_0_when_scored(trained):
    assert scoring_cli.main(args(trained)) == 0
    assert (trained.model_folder / catalog.SCORE).is_file()


def test_f1_of_a_model_that_predicts_no_positive_is_zero(trained):
    class Never:  # P(leaves) 0.1 for every row: nobody flagged
        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.tile([0.9, 0.1], (len(x), 1))

    frame = scoring.read_labelled_csv(trained.test_data / catalog.TESTDATA)
    assert scoring.f1_of(Never(), frame) == 0.0  # testdata.csv has 3 leavers: tp 0, fn 3 -> 2*0 / (0 + 0 + 3) = 0


def test_f1_of_test_data_without_leavers_and_nobody_flagged_is_one(trained):
    """Nothing to find and nothing wrongly flagged: 1.0 (docs/data-contract.md), as the API and the report say."""
    class Never:
        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.tile([0.9, 0.1], (len(x), 1))

    frame = scoring.read_labelled_csv(trained.test_data / catalog.TESTDATA).assign(**{TARGET: 0})
    assert scoring.f1_of(Never(), frame) == 1.0  # tp 0, fp 0, fn 0


def test_test_data_that_names_a_column_twice_is_refused(trained, caplog):
    """pandas would rename the second `exited` to `exited.1` and score against the first: say so instead."""
    path = trained.test_data / catalog.TESTDATA
    frame = pd.read_csv(path)
    frame.insert(len(frame.columns), TARGET, 1 - frame[TARGET], allow_duplicates=True)
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.INFO):
        assert scoring_cli.main(args(trained)) == 1
    assert "duplicated column(s) ['exited']" in caplog.text


def test_test_data_that_is_not_utf8_is_refused_naming_the_bytes_offset(trained, caplog):
    path = trained.test_data / catalog.TESTDATA
    text = path.read_bytes()
    path.write_bytes(text + b"caf\xe9,1,2,3,0\n")
    with caplog.at_level(logging.INFO):
        assert scoring_cli.main(args(trained)) == 1
    assert f"not UTF-8 text (byte {len(text) + 3})" in caplog.text
