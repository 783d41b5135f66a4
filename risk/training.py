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
import pyarrow as pa
import pyarrow.csv as pa_csv
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
READ_BLOCK_BYTES = 1 << 24  # finaldata.csv is parsed this much at a time


def fitted(model: LogisticRegression, x: object, y: object) -> LogisticRegression:
    """`model.fit` with BLAS on one thread. The matrices are a few columns wide, so threads have little to share
    and on a busy 2-core machine they wait on each other: measured here, six fits of 40 rows took 0.24 s with
    OpenBLAS's two threads and 0.04 s with one; one fit of 1M rows 1.2 s and 0.6 s."""
    with threadpool_limits(limits=1, user_api="blas"):
        return model.fit(x, y)


def train_model(frame: pd.DataFrame, seed: int = 0) -> LogisticRegression:
    """Fit a logistic regression on a validated frame; needs both classes present."""
    return train_arrays(*contract.split_xy(frame), seed=seed)


def train_arrays(x: np.ndarray, y: np.ndarray, seed: int = 0) -> LogisticRegression:
    """Fit a logistic regression on the feature matrix `x` and target `y`; needs both classes present."""
    classes = np.flatnonzero(np.bincount(y, minlength=2)).tolist()
    if len(classes) < 2:
        raise ContractError(f"training data has only class {classes} in {contract.TARGET!r}; need both 0 and 1")
    return fitted(LogisticRegression(max_iter=1000, random_state=seed), x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Stratified k-fold predictions of the same model: (y, predicted, P(exited), k); k=0 when too few rows."""
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


def sample_index(y: np.ndarray, rows: int, seed: int = 0) -> np.ndarray | None:
    """The positions, in order, of `rows` of the rows whose targets are `y`, each class in its own share; None
    (every row) when there are no more."""
    if len(y) <= rows:
        return None
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        keep.append(rng.choice(where, max(1, round(rows * len(where) / len(y))), replace=False))
    return np.sort(np.concatenate(keep))


def stratified_sample(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows of `frame` (all of them when it has no more), each class in its own share, in their order."""
    index = sample_index(frame[contract.TARGET].to_numpy(), rows, seed)
    return frame if index is None else frame.iloc[index]


def current_clients(frame: pd.DataFrame) -> int | None:
    """How many clients the training data leaves current (the call list's portfolio); None without ids."""
    from risk import risklist

    latest = risklist.latest_clients(frame)
    return len(risklist.current_clients(latest)) if len(latest) else None


def expected_performance(frame: pd.DataFrame, seed: int = 0, capacity: int | None = None,
                         economics: Economics | None = None) -> dict | None:
    """`expected_of` the frame's features and target, with the clients it leaves current as the portfolio."""
    return expected_of(*contract.split_xy(frame), seed, capacity, economics,
                       current_clients(frame) if capacity else None)


def expected_of(x: np.ndarray, y: np.ndarray, seed: int = 0, capacity: int | None = None,
                economics: Economics | None = None, portfolio: int | None = None) -> dict | None:
    """Cross-validated F1 and log-loss with their spread and sample sizes, on a stratified sample of CV_ROWS
    rows when there are more (the standard errors are those of the sample: nothing hidden), and, out of fold,
    precision and lift in the top `capacity` (scaled from the `portfolio` of current clients to the sample),
    calibration and, with `economics`, the expected maximum profit (`economics`: risk/economics.card_figures);
    None when CV is impossible."""
    from risk import report

    index = sample_index(y, CV_ROWS, seed)
    y, predicted, proba, folds = out_of_fold(*((x, y) if index is None else (x[index], y[index])), seed)
    if not folds:
        return None
    losses = performance.row_log_loss(y, proba)
    counts = performance.confusion_counts(y, predicted)
    kept = losses if len(losses) <= CARD_LOSSES else np.random.default_rng(seed).choice(losses, CARD_LOSSES, False)
    return {
        "cv_folds": folds, "n": len(y), "sampled_from": len(x) if len(y) < len(x) else None,
        "confusion": dict(zip(performance.COUNTS, counts.tolist(), strict=True)),
        "f1": float(performance.f1_from_counts(counts)), "f1_se": _f1_se(counts),
        "log_loss": float(losses.mean()), "log_loss_se": float(losses.std(ddof=1) / np.sqrt(len(losses))),
        "row_log_loss": [round(float(v), 5) for v in kept],
        "at_capacity": report.at_capacity(y, proba, capacity, portfolio, draws=400, seed=seed)
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
    """`card_of` the frame's features and target, with the clients it leaves current as the portfolio."""
    return card_of(*contract.split_xy(frame), data_path, capacity, economics,
                   current_clients(frame) if capacity else None)


def card_of(x: np.ndarray, y: np.ndarray, data_path: Path, capacity: int | None = None,
            economics: Economics | None = None, portfolio: int | None = None) -> dict:
    """The card: what was trained on, the out-of-fold expected performance and, with `economics`, the expected
    maximum profit and the profit-optimal share of clients to call (`economics`, None with `economics_note`
    saying why when the out-of-fold predictions cannot give it)."""
    performance_ = expected_of(x, y, capacity=capacity, economics=economics, portfolio=portfolio)
    figures, why = (performance_ or {}).pop("economics", (None, "no out-of-fold predictions: a class has fewer"
                                                                " than 2 rows"))
    return {
        "features": list(contract.FEATURES),
        "target": contract.TARGET,
        "rows": len(y),
        "positives": int(np.count_nonzero(y)),
        "data_sha256": sha256_file(data_path),
        "trained_at": now(),
        "sklearn_version": sklearn.__version__,
        "expected_performance": performance_,
        "economics": figures,
        **({"economics_note": why} if figures is None and economics is not None else {}),
        "reference": reference_of(x, y),
    }


def reference_sample(frame: pd.DataFrame, seed: int = 0) -> dict:
    """`reference_of` the frame's features and target."""
    return reference_of(*contract.split_xy(frame), seed)


def reference_of(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """A bounded sample of the training rows' features, kept on the card: the drift decision compares new rows
    with it instead of reading the history again."""
    index = sample_index(y, REFERENCE_ROWS, seed)
    sample = x if index is None else x[index]
    return {"features": list(contract.FEATURES), "rows": len(sample), "of": len(y), "values": sample.tolist()}


def read_training_data(path: Path) -> pd.DataFrame:
    """finaldata.csv read whole and validated (ids and every column: O(history) memory); training itself reads
    only what it fits on (`read_training_arrays`)."""
    if not path.is_file():
        raise MissingInputError(f"{path}: training data not found (run ingestion.py first)")
    return contract.read_csv(path, source=str(path), history=True)


def read_training_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features matrix, float64 rows x FEATURES in C order; target, int64) of finaldata.csv: only those columns,
    parsed by pyarrow straight into numbers a block at a time (at 50M rows 1.6 GB, where the text path's frame of
    strings would take about 15 GB). A file pyarrow does not take as the contract's numbers, or whose values break
    the contract, is read again by the text path (`read_training_data`), whose error names the row and the column."""
    if not path.is_file():
        raise MissingInputError(f"{path}: training data not found (run ingestion.py first)")
    arrays = _typed_arrays(path)
    return arrays if arrays is not None else contract.split_xy(read_training_data(path))


def _typed_arrays(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """`read_training_arrays`' pyarrow pass, block by block into arrays sized by the line count (filled in place,
    never copied whole); None when a block is not the contract's numbers or breaks it (or the file has no rows)."""
    columns = (*contract.FEATURES, contract.TARGET)
    options = pa_csv.ConvertOptions(include_columns=list(columns), column_types=dict.fromkeys(columns, pa.float64()),
                                    null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True)
    lines = _lines(path)  # at least the rows
    x, y, rows = np.empty((lines, len(contract.FEATURES)), dtype=np.float64), np.empty(lines, dtype=np.int8), 0
    try:
        with pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=READ_BLOCK_BYTES),
                             convert_options=options) as reader:
            for batch in reader:
                end = rows + batch.num_rows
                if end > lines or not _typed_block(batch, x[rows:end], y[rows:end]):
                    return None
                rows = end
    except (pa.ArrowInvalid, pa.ArrowKeyError):  # not the contract's numbers, or a column is absent
        return None
    finally:
        pa.default_memory_pool().release_unused()
    return (x[:rows], y[:rows].astype(np.int64)) if rows else None


def _lines(path: Path) -> int:
    """The line breaks in `path`, plus one: at least its data rows."""
    count = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(READ_BLOCK_BYTES), b""):
            count += block.count(b"\n")
    return count


def _typed_block(batch: pa.RecordBatch, x: np.ndarray, y: np.ndarray) -> bool:
    """A block's features and target written into `x` (rows x FEATURES) and `y`; False when a value breaks the
    contract (left to the text path to name)."""
    for j, name in enumerate(contract.FEATURES):
        column = contract.BY_NAME[name]
        values = batch.column(name).to_numpy(zero_copy_only=False)
        if column.fill is not None:
            values = np.where(np.isnan(values), column.fill, values)  # older rows, written before it existed
        if not contract.all_good(column, values):
            return False
        x[:, j] = values
    target = batch.column(contract.TARGET).to_numpy(zero_copy_only=False)
    if not contract.all_good(contract.BY_NAME[contract.TARGET], target):
        return False
    y[:] = target
    return True


def portfolio_of(config: Config, data_path: Path) -> int | None:
    """How many clients the ingested data leaves current (the call list's portfolio; None without ids): from the
    prepared read state when it covers the file (every observation, repeats included), else from the ids and
    targets of finaldata.csv alone (read as a frame of two columns: a fallback, O(history) in memory)."""
    from risk import prepared

    state = prepared.as_of_file(config)
    if state is not None:
        return prepared.population(state) or (None if not state.sizes["clients"] else 0)
    options = pa_csv.ConvertOptions(include_columns=[contract.ID_COLUMN, contract.TARGET],
                                    column_types={contract.ID_COLUMN: pa.string(), contract.TARGET: pa.float64()},
                                    null_values=[""], strings_can_be_null=True)
    try:
        frame = pa_csv.read_csv(data_path, convert_options=options).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        frame = read_training_data(data_path)
    return current_clients(frame)  # risklist's latest row per client: the one definition


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
        x, y = read_training_arrays(data_path)
        model = train_arrays(x, y)
        card = card_of(x, y, data_path, config.call_capacity, from_config(config),
                       portfolio_of(config, data_path) if config.call_capacity else None)
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
