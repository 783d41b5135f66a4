"""The data contract: the one place that knows the columns, their types, ranges and what is tolerated.

`SCHEMA` declares each column once; every check below (a DataFrame, JSON records, ingestion's row checks)
is driven by it. Stages split features from the target with `split_xy`; errors name the source, row, field.
"""
from __future__ import annotations

import math
import re
from collections import Counter, namedtuple
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from risk.errors import ContractError

if TYPE_CHECKING:
    import pandas as pd

MAX_COUNT = float(2**53)  # the largest count a float64 holds exactly; beyond it two counts could merge


class Column(namedtuple("_Column", "name role required nullable minimum maximum allowed fill label",
                        defaults=(True, False, None, None, None, None, None))):
    """One column: its role (`id` text, `feature` number, `target` label), whether it must be present and
    filled, its range (`minimum`/`maximum`) or its `allowed` values, and for a feature added to a history
    that already has rows, `fill`: the value its empty cells take in the rows written before it existed
    (`python -m risk.migrate` adds the column to the history, empty). New files must carry it like any other.
    `label` is what a client manager reads (the call list's reasons); the name with spaces when absent."""

    __slots__ = ()


SCHEMA = (
    Column("corporation", "id", required=False, nullable=True),
    Column("lastmonth_activity", "feature", minimum=0.0, maximum=MAX_COUNT, label="activity last month"),
    Column("lastyear_activity", "feature", minimum=0.0, maximum=MAX_COUNT, label="activity last year"),
    Column("number_of_employees", "feature", minimum=0.0, maximum=MAX_COUNT, label="employees"),
    Column("exited", "target", allowed=(0, 1)),
)
# What is tolerated, rather than rejected (README "Data contract"):
TOLERATED = (
    "columns in any order; surrounding whitespace in headers and values; quoted plain numbers",
    "extra columns: dropped, and named in the file's outcome",
    "a UTF-8 byte-order mark; UTF-16 with a byte-order mark (decoded); blank lines (skipped)",
    "the target written as a number equal to 0 or 1 (0, 1, 1.0)",
)
BY_NAME = {column.name: column for column in SCHEMA}
ID_COLUMN = next(c.name for c in SCHEMA if c.role == "id")
FEATURES = tuple(c.name for c in SCHEMA if c.role == "feature")
TARGET = next(c.name for c in SCHEMA if c.role == "target")
COLUMNS = tuple(c.name for c in SCHEMA)
LABELS = {c.name: c.label or c.name.replace("_", " ") for c in SCHEMA}
HEADER_LINES = 1  # a CSV row number counts the header as line 1
DELIMITER = ","
THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


def required(labelled: bool = True) -> tuple[str, ...]:
    """The columns a file must have: every required column (without the target when not `labelled`)."""
    return tuple(c.name for c in SCHEMA if c.required and (labelled or c.role != "target"))


def missing_columns(columns: Sequence[str], needed: Sequence[str]) -> list[str]:
    """Required columns that are absent (headers compared without surrounding whitespace)."""
    present = {str(c).strip() for c in columns}
    return [c for c in needed if c not in present]


def expected(column: Column) -> str:
    """What `column` must hold, in words, for error messages."""
    if column.allowed is not None:
        return " or ".join(str(v) for v in column.allowed)
    return f"a finite number >= {column.minimum:g}"


def bad_numbers(column: Column, values: np.ndarray) -> np.ndarray:
    """True where a parsed value (float64, NaN for missing or unparseable) breaks `column`'s rule."""
    with np.errstate(invalid="ignore"):
        if column.allowed is not None:
            return ~np.isin(values, np.asarray(column.allowed, dtype="float64"))
        bad = ~np.isfinite(values)
        if column.minimum is not None:
            bad |= values < column.minimum
        if column.maximum is not None:
            bad |= values > column.maximum
    return bad


def all_good(column: Column, values: np.ndarray) -> bool:
    """Whether no value breaks `column`'s rule (not bad_numbers(...).any()), from the column's least and
    greatest values rather than a mask per rule: half the time of a 100k-row check."""
    if column.allowed is not None or not values.size:
        return not bad_numbers(column, values).any()
    low, high = values.min(), values.max()  # NaN if any is NaN
    return bool(np.isfinite(low) and np.isfinite(high)
                and (column.minimum is None or low >= column.minimum)
                and (column.maximum is None or high <= column.maximum))


def reason(column: Column, raw: object) -> str:
    """Why the raw text `raw` breaks `column` (called only for values already found bad)."""
    text = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw).strip()
    if not text:
        return "missing value"
    if THOUSANDS.match(text):
        return "a thousands separator; write the number without it"
    try:
        if "_" in text:  # float() takes 1_000; the parsers do not
            raise ValueError(text)
        number = float(text)
    except ValueError:
        return f"not a number; expected {expected(column)}"
    if math.isnan(number):
        return "NaN is not a value"
    if column.allowed is not None:
        return f"expected {expected(column)}"
    if math.isinf(number):
        return "not finite (infinite or too large for a float)"
    if column.minimum is not None and number < column.minimum:
        return f"negative; expected a number >= {column.minimum:g}"
    return f"too large; expected at most {column.maximum:.0f}"


def parse_numbers(raw: pd.Series) -> np.ndarray:
    """Text (or numbers) as float64, a new array the caller may change; NaN where missing or not a number."""
    import pandas as pd  # in each function that needs it: ingestion.py's fast path runs without pandas

    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype="float64", na_value=np.nan, copy=True)  # pandas 3 gives a read-only view
    return pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").to_numpy(dtype="float64",
                                                                                       na_value=np.nan)


def shown(value: object, width: int = 40) -> str:
    """A cell as an error message quotes it: its text, cut to `width` characters (an empty cell is '')."""
    import pandas as pd

    missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
    text = repr("" if missing else str(value))
    return text if len(text) <= width else text[:width - 4] + "...'"


def _checked(frame: pd.DataFrame, column: Column, source: str, history: bool = False) -> np.ndarray:
    raw = frame[column.name]
    values = parse_numbers(raw)
    if history and column.fill is not None:
        values[raw.isna().to_numpy()] = column.fill
    bad = bad_numbers(column, values)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        value = raw.iloc[pos]
        raise ContractError(f"{source}: row {HEADER_LINES + 1 + pos}, column {column.name!r}: expected "
                            f"{expected(column)}, got {shown(value)} ({reason(column, value)})")
    return values


def kept(numbers: dict[str, np.ndarray], history: bool = False) -> bool:
    """Whether typed columns (float64, NaN for an empty cell; every number column of the contract) keep it, the
    empty cells of a column added later taking its `fill` first when reading the `history` (in place). False sends
    the caller to validate_frame on the text, whose error names the row: this is its check without pandas."""
    for column in SCHEMA:
        if column.role == "id":
            continue
        values = numbers[column.name]
        if history and column.fill is not None:
            values[np.isnan(values)] = column.fill
        if not all_good(column, values):
            return False
    return True


def validate_frame(frame: pd.DataFrame, source: str, *, labelled: bool = True, history: bool = False) -> pd.DataFrame:
    """Check `frame` against the contract and return it typed, in contract column order.

    Headers may carry surrounding whitespace and appear in any order; extra columns are dropped.
    `labelled=False` accepts rows without the target (for prediction). `history=True` reads the ingested
    history, where a feature added later is empty in older rows and takes its `fill`.
    """
    import pandas as pd

    frame = frame.rename(columns=lambda c: str(c).strip())
    needed = required(labelled)
    missing = missing_columns(frame.columns, needed)
    if missing:
        raise ContractError(f"{source}: missing required column(s) {missing}; expected {list(needed)}")
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise ContractError(f"{source}: duplicated column(s) {dupes}")
    out = pd.DataFrame(index=frame.index)
    out[ID_COLUMN] = frame[ID_COLUMN].astype("string") if ID_COLUMN in frame.columns else pd.NA
    out[ID_COLUMN] = out[ID_COLUMN].astype("string")
    for column in SCHEMA:
        if column.role == "feature" or (column.role == "target" and labelled):
            values = _checked(frame, column, source, history)
            out[column.name] = values.astype("int64") if column.role == "target" else values
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


def _record_value(record: dict, name: str, index: int) -> float:
    if name not in record:
        raise ContractError(f"records[{index}]: missing field {name!r}; expected {list(FEATURES)}")
    value = record[name]
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.inf
    if bad_numbers(BY_NAME[name], np.array([number]))[0]:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ContractError(f"records[{index}].{name}: expected {expected(BY_NAME[name])}, got {shown}")
    return number


def validate_records(records: object) -> np.ndarray:
    """JSON records (a list of objects with the feature fields) as a validated feature matrix."""
    if not isinstance(records, list) or not records:
        raise ContractError(f"records: expected a non-empty list of objects, got {type(records).__name__}")
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ContractError(f"records[{index}]: expected an object, got {type(record).__name__}")
        rows.append([_record_value(record, name, index) for name in FEATURES])
    return np.array(rows, dtype="float64").reshape(len(rows), len(FEATURES))


def named_twice(names: list[str]) -> list[str]:
    """The column names (stripped, not empty) that a header gives more than once, sorted."""
    counts = Counter(name.strip() for name in names)
    return sorted(name for name, count in counts.items() if name and count > 1)


def _first_non_utf8(path: Path) -> int | None:
    """The offset (from 0) of the first byte of `path` that is not UTF-8."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def read_csv(path: Path, *, labelled: bool = True, source: str | None = None, history: bool = False) -> pd.DataFrame:
    """Read a client CSV and validate it; ContractError names the file (or `source`) and what was wrong."""
    import pandas as pd

    source = source or path.name
    try:
        raw = pd.read_csv(path, dtype=str, encoding="utf-8", skipinitialspace=True, keep_default_na=False,
                          na_values=[""])  # ids are text, as ingestion keeps them: "NA" is a name
        names = pd.read_csv(path, header=None, nrows=1, dtype=str, encoding="utf-8").iloc[0]
    except UnicodeDecodeError:  # pandas' offset is within the block it decoded: find the file's own
        offset = _first_non_utf8(path)
        raise ContractError(f"{source}: not UTF-8 text (byte {offset}); expected a UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise ContractError(f"{source}: empty file; expected a CSV header and rows") from None
    except pd.errors.ParserError as exc:
        raise ContractError(f"{source}: not a well-formed CSV ({str(exc).strip()})") from None
    except OSError as exc:
        raise ContractError(f"{source}: cannot be read ({exc.strerror})") from None
    if raw.empty:
        raise ContractError(f"{source}: header only, no data rows")
    duplicated = named_twice(names.fillna("").tolist())  # as written: pandas renames a second `exited` `exited.1`
    if duplicated:
        raise ContractError(f"{source}: duplicated column(s) {duplicated}")
    return validate_frame(raw, source, labelled=labelled, history=history)
