"""Train the attrition-risk model: logistic regression on the contract's features.

Reads finaldata.csv from the output folder. Writes to the model folder trainedmodel.skops (the estimator in
skops format, what every later load reads), trainedmodel.pkl (the course's pickle of the same estimator, never
loaded by this project) and then their card trainedmodel.json (features in order, rows, data fingerprint, the
files' sha256, and the cross-validated F1 and log-loss the drift decision compares new data with).
Run: python training.py [--config PATH] [--json]
"""
from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from risk import catalog, contract, performance
from risk import model as models
from risk.config import Config
from risk.economics import Economics, card_figures, from_config
from risk.errors import ContractError, MissingInputError
from risk.files import atomic_write_bytes, atomic_write_text, read_json, sha256_file
from risk.ledger import now, recorded

logger = logging.getLogger(__name__)
CV_FOLDS = 5
CARD_LOSSES = 2000  # per-row log-losses kept on the card (a fixed subsample beyond this)
CV_ROWS = 100_000  # the card's cross-validation runs on a stratified sample of this many rows beyond it
REFERENCE_ROWS = 2000  # training rows kept on the card: the drift decision's reference for the features


def fitted(model: LogisticRegression, x: object, y: object) -> LogisticRegression:
    """`model.fit` with BLAS on one thread. The matrices are a few columns wide, so threads have little to share
    and on a busy 2-core machine they wait on each other: measured here, six fits of 40 rows took 0.24 s with
    OpenBLAS's two threads and 0.04 s with one; one fit of 1M rows 1.2 s and 0.6 s."""
    with threadpool_limits(limits=1, user_api="blas"):
        return model.fit(x, y)


def train_model(frame: pd.DataFrame, seed: int = 0) -> LogisticRegression:
    """Fit a logistic regression on a validated frame; needs both classes present."""
    x, y = contract.split_xy(frame)
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise ContractError(f"training data has only class {classes} in {contract.TARGET!r}; need both 0 and 1")
    return fitted(LogisticRegression(max_iter=1000, random_state=seed), x, y)


def out_of_fold(frame: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Stratified k-fold predictions of the same model: (y, predicted, P(exited), k); k=0 when too few rows."""
    x, y = contract.split_xy(frame)
    y = np.asarray(y)
    folds = min(CV_FOLDS, int(np.bincount(y, minlength=2).min()))
    proba = np.full(len(y), np.nan)
    if folds < 2:
        return y, proba, proba, 0
    x = np.asarray(x, dtype=float)
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = fitted(LogisticRegression(max_iter=1000, random_state=seed), x[fit], y[fit])
        proba[held] = performance.probabilities(model, x[held])
    return y, performance.flagged(proba), proba, folds


def stratified_sample(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows of `frame` (all of them when it has no more), each class in its own share, in their order."""
    if len(frame) <= rows:
        return frame
    rng = np.random.default_rng(seed)
    y = frame[contract.TARGET].to_numpy()
    keep = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        keep.append(rng.choice(where, max(1, round(rows * len(where) / len(y))), replace=False))
    return frame.iloc[np.sort(np.concatenate(keep))]


def current_clients(frame: pd.DataFrame) -> int | None:
    """How many clients the training data leaves current (the call list's portfolio); None without ids."""
    from risk import risklist

    latest = risklist.latest_clients(frame)
    return len(risklist.current_clients(latest)) if len(latest) else None


def expected_performance(frame: pd.DataFrame, seed: int = 0, capacity: int | None = None,
                         economics: Economics | None = None) -> dict | None:
    """Cross-validated F1 and log-loss with their spread and sample sizes, on a stratified sample of CV_ROWS
    rows when there are more (the standard errors are those of the sample: nothing hidden), and, out of fold,
    precision and lift in the top `capacity` (scaled to the sample), calibration and, with `economics`, the
    expected maximum profit (`economics`: risk/economics.card_figures); None when CV is impossible."""
    from risk import report

    sample = stratified_sample(frame, CV_ROWS, seed)
    y, predicted, proba, folds = out_of_fold(sample, seed)
    if not folds:
        return None
    losses = performance.row_log_loss(y, proba)
    counts = performance.confusion_counts(y, predicted)
    kept = losses if len(losses) <= CARD_LOSSES else np.random.default_rng(seed).choice(losses, CARD_LOSSES, False)
    return {
        "cv_folds": folds, "n": len(y), "sampled_from": len(frame) if len(sample) < len(frame) else None,
        "confusion": dict(zip(performance.COUNTS, counts.tolist(), strict=True)),
        "f1": float(performance.f1_from_counts(counts)), "f1_se": _f1_se(counts),
        "log_loss": float(losses.mean()), "log_loss_se": float(losses.std(ddof=1) / np.sqrt(len(losses))),
        "row_log_loss": [round(float(v), 5) for v in kept],
        "at_capacity": report.at_capacity(y, proba, capacity, current_clients(frame), draws=400, seed=seed)
        if capacity else None,
        "calibration": report.calibration_scores(y, proba),
        **({"economics": card_figures(y, proba, economics)} if economics is not None else {}),
    }


def _f1_se(counts: np.ndarray, draws: int = 1000) -> float:
    """Bootstrap standard error of the pooled out-of-fold F1."""
    resampled = np.random.default_rng(0).multinomial(int(counts.sum()), counts / counts.sum(), size=draws)
    return float(performance.f1_from_counts(resampled).std(ddof=1))


def model_card(frame: pd.DataFrame, data_path: Path, capacity: int | None = None,
               economics: Economics | None = None) -> dict:
    """The card: what was trained on, the out-of-fold expected performance and, with `economics`, the expected
    maximum profit and the profit-optimal share of clients to call (`economics`, None with `economics_note`
    saying why when the out-of-fold predictions cannot give it)."""
    performance_ = expected_performance(frame, capacity=capacity, economics=economics)
    figures, why = (performance_ or {}).pop("economics", (None, "no out-of-fold predictions: a class has fewer"
                                                                " than 2 rows"))
    return {
        "features": list(contract.FEATURES),
        "target": contract.TARGET,
        "rows": len(frame),
        "positives": int(frame[contract.TARGET].sum()),
        "data_sha256": sha256_file(data_path),
        "trained_at": now(),
        "sklearn_version": sklearn.__version__,
        "expected_performance": performance_,
        "economics": figures,
        **({"economics_note": why} if figures is None and economics is not None else {}),
        "reference": reference_sample(frame),
    }


def reference_sample(frame: pd.DataFrame, seed: int = 0) -> dict:
    """A bounded sample of the training rows' features, kept on the card: the drift decision compares new rows
    with it instead of reading the history again."""
    sample = stratified_sample(frame, REFERENCE_ROWS, seed)
    return {"features": list(contract.FEATURES), "rows": len(sample), "of": len(frame),
            "values": contract.matrix(sample).tolist()}


def read_training_data(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInputError(f"{path}: training data not found (run ingestion.py first)")
    return contract.read_csv(path, source=str(path), history=True)


def load_trained(config: Config) -> models.Model:
    """The trained model in the model folder, read from its skops file with the features its card lists; the
    card must vouch for that file (training writes the card last)."""
    path, card_path = config.model_folder / catalog.SAFE_MODEL, config.model_folder / catalog.CARD
    if not path.is_file():
        raise MissingInputError(f"{path}: model not found (run training.py first)")
    if not card_path.is_file():
        raise MissingInputError(f"{card_path}: model card not found (run training.py again)")
    card = read_json(card_path)
    if card.get("safe_model_sha256") != sha256_file(path):
        raise MissingInputError(f"{path}: not the model its card {card_path.name} describes (truncated, corrupt or "
                                "replaced): run training.py again")
    return models.read(path, card.get("features") or ())


def run_training(config: Config, parent_run: int | None = None) -> dict:
    """Train on finaldata.csv; write the model, then its card (the record after the payload)."""
    data_path = config.output_folder / catalog.FINALDATA
    with recorded(config.ledger_path, "training", parent_run) as (ledger, _, detail):
        ingested = ledger.files.records(status="ingested")  # what finaldata.csv holds now
        files = "".join(f"{f['name']}\n" for f in ingested)
        frame = read_training_data(data_path)
        model = train_model(frame)
        card = model_card(frame, data_path, config.call_capacity, from_config(config))
        atomic_write_text(config.model_folder / catalog.TRAINED_FILES, files)
        card["files_sha256"] = sha256_file(config.model_folder / catalog.TRAINED_FILES)
        card["last_file_id"] = max((f["id"] for f in ingested), default=0)  # the ledger's newest file trained on
        atomic_write_bytes(config.model_folder / catalog.SAFE_MODEL, models.dumps(model))
        card["safe_model_sha256"] = sha256_file(config.model_folder / catalog.SAFE_MODEL)
        atomic_write_bytes(config.model_folder / catalog.MODEL, pickle.dumps(model))  # the course's copy
        card["model_sha256"] = sha256_file(config.model_folder / catalog.MODEL)
        atomic_write_text(config.model_folder / catalog.CARD, json.dumps(card, indent=2) + "\n")
        detail.update(card)
    logger.info("training: fitted on %d rows (%d exited) -> %s", card["rows"], card["positives"],
                config.model_folder / catalog.MODEL)
    if no_reference(card):
        logger.warning("training: %s", no_reference(card))
    return card


def no_reference(card: dict) -> str | None:
    """A warning when the card keeps no cross-validated performance (a class had fewer than 2 rows), else None."""
    if card.get("expected_performance") is not None:
        return None
    leavers, stayers = card["positives"], card["rows"] - card["positives"]
    return (f"the training data holds {leavers} leaver(s) and {stayers} stayer(s): too few to cross-validate, so"
            " the card keeps no performance reference; the next drift decision retrains the model once"
            " drift_min_rows new rows holding both classes arrive")
