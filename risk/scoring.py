"""Score a model: F1 on the test data.

Reads the trained model (trainedmodel.skops and its card) from the model folder and testdata.csv from the
test data folder.
Writes latestscore.txt (the F1, one number) to the model folder and the score to the ledger.
Run: python scoring.py [--config PATH] [--json]
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from risk import catalog, contract, performance
from risk.config import Config
from risk.errors import MissingInputError
from risk.files import atomic_write_text, sha256_file
from risk.ledger import recorded
from risk.training import load_trained

logger = logging.getLogger(__name__)


def f1_of(model: object, frame: pd.DataFrame, threshold: float = performance.THRESHOLD) -> float:
    """F1 of `model` on a validated, labelled frame: the project's one F1 of its one decision rule
    (risk/performance.py)."""
    x, y = contract.split_xy(frame)
    return performance.f1(y, performance.predictions(model, x, threshold))


def read_labelled_csv(path: Path) -> pd.DataFrame:
    """A labelled CSV that a stage needs, validated; errors name the file."""
    if not path.is_file():
        raise MissingInputError(f"{path}: file not found")
    return contract.read_csv(path, source=str(path))



def format_score(f1: float) -> str:
    return f"{f1:.6f}\n"


def run_scoring(config: Config, parent_run: int | None = None) -> dict:
    """Score the trained model on the test data; write latestscore.txt. The score is recorded under the
    model's identity, the sha256 of trainedmodel.pkl (its card binds the skops file read here to it)."""
    model_path = config.model_folder / catalog.MODEL
    with recorded(config.ledger_path, "scoring", parent_run) as (ledger, run_id, detail):
        model = load_trained(config)
        frame = read_labelled_csv(config.testdata_path)
        f1 = f1_of(model, frame)
        atomic_write_text(config.model_folder / catalog.SCORE, format_score(f1))
        sha = sha256_file(model_path)
        ledger.scores.record(run_id, sha, "testdata", f1, len(frame))
        detail.update({"f1": f1, "rows": len(frame), "model_sha256": sha})
    logger.info("scoring: F1 %.4f on %d test rows -> %s", f1, len(frame), config.model_folder / catalog.SCORE)
    return dict(detail)
