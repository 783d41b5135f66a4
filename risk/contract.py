"""The data contract: the one place that knows the columns, their types and ranges.

Every stage and the API split features from the target with `split_xy` and check data with
`validate_frame` or `validate_records`; errors name the source, row and field and what was expected.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from risk.errors import ContractError

ID_COLUMN = "corporation"
FEATURES = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
TARGET = "exited"
COLUMNS = (ID_COLUMN, *FEATURES, TARGET)
HEADER_LINES = 1  # a CSV row number counts the header as line 1


def missing_columns(columns: Sequence[str], required: Sequence[str]) -> list[str]:
    """Required columns that are absent (headers compared without surrounding whitespace)."""
    present = {str(c).strip() for c in columns}
    return [c for c in required if c not in present]


def _bad_value(source: str, row: int, column: str, value: object, expected: str) -> ContractError:
    return ContractError(f"{source}: row {row}, column {column!r}: expected {expected}, got {value!r}")


def _numeric_column(frame: pd.DataFrame, column: str, source: str, first_row: int) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan))
    bad = ~finite | (values.to_numpy(dtype="float64", na_value=np.nan) < 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise _bad_value(source, first_row + pos, column, raw.iloc[pos], "a finite number >= 0")
    return values.astype("float64")


def _target_column(frame: pd.DataFrame, source: str, first_row: int) -> pd.Series:
    raw = frame[TARGET]
    values = pd.to_numeric(raw, errors="coerce")
    bad = ~values.isin([0, 1]).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise _bad_value(source, first_row + pos, TARGET, raw.iloc[pos], "0 or 1")
    return values.astype("int64")


def validate_frame(frame: pd.DataFrame, source: str, *, labelled: bool = True) -> pd.DataFrame:
    """Check `frame` against the contract and return it typed, in contract column order.

    Headers may carry surrounding whitespace and appear in any order; extra columns are dropped.
    `labelled=False` accepts rows without the target (for prediction).
    """
    frame = frame.rename(columns=lambda c: str(c).strip())
    required = (*FEATURES, TARGET) if labelled else FEATURES
    missing = missing_columns(frame.columns, required)
    if missing:
        raise ContractError(f"{source}: missing required column(s) {missing}; expected {list(required)}")
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise ContractError(f"{source}: duplicated column(s) {dupes}")
    first_row = HEADER_LINES + 1
    out = pd.DataFrame(index=frame.index)
    out[ID_COLUMN] = frame[ID_COLUMN].astype("string") if ID_COLUMN in frame.columns else pd.NA
    out[ID_COLUMN] = out[ID_COLUMN].astype("string")
    for column in FEATURES:
        out[column] = _numeric_column(frame, column, source, first_row)
    if labelled:
        out[TARGET] = _target_column(frame, source, first_row)
    return out.reset_index(drop=True)


def matrix(frame: pd.DataFrame) -> np.ndarray:
    """The feature matrix (rows x FEATURES, float64) that models are fitted on and predict from.

    Models are fitted on arrays, not DataFrames: scikit-learn's DataFrame checks cost more than the
    prediction itself on the API's one-record path. The column order is FEATURES (also in the model card).
    """
    return frame.loc[:, list(FEATURES)].to_numpy(dtype="float64")


def split_xy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix and target vector of a validated frame."""
    return matrix(frame), frame[TARGET].to_numpy(dtype="int64")


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns, in contract order, of a validated frame."""
    return frame.loc[:, list(FEATURES)]


def _record_value(record: dict, column: str, index: int) -> float:
    if column not in record:
        raise ContractError(f"records[{index}]: missing field {column!r}; expected {list(FEATURES)}")
    value = record[column]
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ContractError(f"records[{index}].{column}: expected a finite number >= 0, got {shown}")
    return number


def validate_records(records: object) -> np.ndarray:
    """JSON records (a list of objects with the feature fields) as a validated feature matrix."""
    if not isinstance(records, list) or not records:
        raise ContractError(f"records: expected a non-empty list of objects, got {type(records).__name__}")
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ContractError(f"records[{index}]: expected an object, got {type(record).__name__}")
        rows.append([_record_value(record, column, index) for column in FEATURES])
    return np.array(rows, dtype="float64").reshape(len(rows), len(FEATURES))


def read_csv(path: Path, *, labelled: bool = True, source: str | None = None) -> pd.DataFrame:
    """Read a client CSV and validate it; ContractError names the file (or `source`) and what was wrong."""
    source = source or path.name
    try:
        raw = pd.read_csv(path, dtype=str, encoding="utf-8", skipinitialspace=True)
    except UnicodeDecodeError as exc:
        raise ContractError(f"{source}: not UTF-8 text (byte {exc.start}); expected a UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise ContractError(f"{source}: empty file; expected a CSV header and rows") from None
    except pd.errors.ParserError as exc:
        raise ContractError(f"{source}: not a well-formed CSV ({str(exc).strip()})") from None
    except OSError as exc:
        raise ContractError(f"{source}: cannot be read ({exc.strerror})") from None
    if raw.empty:
        raise ContractError(f"{source}: header only, no data rows")
    return validate_frame(raw, source, labelled=labelled)
