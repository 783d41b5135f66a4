"""Train the attrition-risk model: logistic regression on the contract's features.

Reads finaldata.csv from the output folder. Writes trainedmodel.pkl (a plain pickled scikit-learn estimator)
and then its card trainedmodel.json (features, rows, data fingerprint) to the model folder.
Run: python training.py [--config PATH] [--json]
"""
from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression

from risk import cli, contract
from risk.config import Config
from risk.errors import ContractError, MissingInputError
from risk.files import atomic_write_bytes, atomic_write_text, sha256_file
from risk.ledger import now, recorded

logger = logging.getLogger(__name__)
MODEL = "trainedmodel.pkl"
CARD = "trainedmodel.json"
FINALDATA = "finaldata.csv"


def train_model(frame: pd.DataFrame, seed: int = 0) -> LogisticRegression:
    """Fit a logistic regression on a validated frame; needs both classes present."""
    x, y = contract.split_xy(frame)
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise ContractError(f"training data has only class {classes} in {contract.TARGET!r}; need both 0 and 1")
    model = LogisticRegression(max_iter=1000, random_state=seed)
    return model.fit(x, y)


def model_card(frame: pd.DataFrame, data_path: Path) -> dict:
    return {
        "features": list(contract.FEATURES),
        "target": contract.TARGET,
        "rows": len(frame),
        "positives": int(frame[contract.TARGET].sum()),
        "data_sha256": sha256_file(data_path),
        "trained_at": now(),
        "sklearn_version": sklearn.__version__,
    }


def read_training_data(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInputError(f"{path}: training data not found (run ingestion.py first)")
    return contract.read_csv(path, source=str(path))


def load_pickle(path: Path) -> object:
    """Load a model file we wrote ourselves (never a path a client sent)."""
    if not path.is_file():
        raise MissingInputError(f"{path}: model not found (run training.py first)")
    with open(path, "rb") as handle:
        return pickle.load(handle)


def run_training(config: Config, parent_run: int | None = None) -> dict:
    """Train on finaldata.csv; write the model, then its card (the record after the payload)."""
    data_path = config.output_folder / FINALDATA
    with recorded(config.ledger_path, "training", parent_run) as (_, _, detail):
        frame = read_training_data(data_path)
        model = train_model(frame)
        card = model_card(frame, data_path)
        atomic_write_bytes(config.model_folder / MODEL, pickle.dumps(model))
        card["model_sha256"] = sha256_file(config.model_folder / MODEL)
        atomic_write_text(config.model_folder / CARD, json.dumps(card, indent=2) + "\n")
        detail.update(card)
    logger.info("training: fitted on %d rows (%d exited) -> %s", card["rows"], card["positives"],
                config.model_folder / MODEL)
    return card


def main(argv: list[str] | None = None) -> int:
    return cli.run(cli.parser(__doc__).parse_args(argv), run_training)


if __name__ == "__main__":
    raise SystemExit(main())
