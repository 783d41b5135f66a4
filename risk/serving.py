"""API request bodies in every accepted format, as validated feature rows with the client ids when given.

Formats on POST /prediction: JSON {"records": [...]}, MLflow's {"dataframe_records": [...]} and
{"dataframe_split": {"columns": [...], "data": [[...]]}}, {"dataset_path": "..."} (confined to the data
folders), a text/csv body, and a multipart upload in the field `file`.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import namedtuple
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from risk import contract, performance
from risk.config import Config
from risk.errors import ApiError, ContractError

MAX_ROWS = 100_000
MAX_PATH_CHARS = 4096
CSV_TYPES = ("text/csv", "application/csv")
FORMATS = "'records', 'dataframe_records', 'dataframe_split' or 'dataset_path'"


class Batch(namedtuple("_Batch", "x ids")):
    """Rows to score: `x` (rows x contract.FEATURES, float64) and `ids` (client names, or None): a list, or
    from a clean CSV the JSON array already written (an orjson.Fragment)."""

    __slots__ = ()


def _limit(rows: int) -> None:
    if rows > MAX_ROWS:
        raise ApiError(413, "too_many_rows", f"at most {MAX_ROWS} rows per request, got {rows}")


def _ids(records: list, key: str) -> list[str | None] | None:
    """The records' ids, by the rule of CSV ids and ingestion: trimmed text, null where empty."""
    if not any(isinstance(r, dict) and contract.ID_COLUMN in r for r in records):
        return None
    ids = []
    for index, record in enumerate(records):
        value = record.get(contract.ID_COLUMN)
        if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int))):
            raise ContractError(f"{key}[{index}].{contract.ID_COLUMN}: expected a string, got {value!r}"[:200])
        ids.append(None if value is None else str(value))
    try:
        return trimmed_ids(pa.array(ids, pa.string())).to_pylist()
    except UnicodeEncodeError:  # JSON may escape half a UTF-16 pair ("\ud800"), which no text holds
        index = next(i for i, v in enumerate(ids) if v is not None and _unencodable(v))
        raise ContractError(f"{key}[{index}].{contract.ID_COLUMN}: expected text, got "
                            f"{ids[index]!r} (a lone UTF-16 surrogate)"[:200]) from None


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def from_records(records: object, key: str = "records") -> Batch:
    if isinstance(records, list):
        _limit(len(records))
        if not records:
            raise ContractError(f"{key}: expected a non-empty list of rows, got an empty list")
    try:
        x = contract.validate_records(records)
    except ContractError as exc:
        raise ContractError(str(exc).replace("records", key, 1)) from None
    return Batch(x, _ids(records, key))


def from_split(split: object) -> Batch:
    """MLflow's split orientation: {"columns": [...], "data": [[...], ...]} (an "index" is ignored)."""
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
            or not isinstance(split.get("data"), list):
        raise ApiError(400, "bad_body", "dataframe_split must be an object with 'columns' (list) and 'data' (list)")
    columns, data = split["columns"], split["data"]
    _limit(len(data))
    if not all(isinstance(c, str) for c in columns):
        raise ApiError(400, "bad_body", "dataframe_split.columns must be a list of strings")
    duplicated = contract.named_twice(columns)
    if duplicated:
        raise ContractError(f"dataframe_split.columns: duplicated column(s) {duplicated}")
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ContractError(f"dataframe_split.data[{index}]: expected a list of {len(columns)} values")
    return from_records([dict(zip(columns, row, strict=True)) for row in data], "dataframe_split.data")


# Two ways to read a CSV, which give the same floats and ids. The fast path: Arrow reads a clean CSV with the
# features typed as float64, on both cores. Anything it cannot take as is (a bad or missing value, odd headers,
# a ragged row, not UTF-8) goes to the text path, pandas reading every cell as text, whose errors name the row
# and column. As in ingestion, an id is text: "NA" is a name, only an empty cell is missing. The text path skips
# spaces after a comma, so `a, "b"` holds the quoted field `b`; Arrow reads ` "b"`, so such ids go to it.
TEXT_OPTIONS = {"dtype": str, "skipinitialspace": True, "encoding": "utf-8-sig", "keep_default_na": False,
                "na_values": [""]}
FAST_TYPES = {name: pa.float64() for name in contract.FEATURES} | {contract.ID_COLUMN: pa.string()}


def fast_header(raw: bytes) -> list[str] | None:
    """The header's column names, if the fast path can take this CSV."""
    end = raw.find(b"\n")
    try:
        names = raw[:end].decode("utf-8-sig").rstrip("\r").split(",") if end > 0 else []
    except UnicodeDecodeError:
        return None
    clean = len(set(names)) == len(names) and all(n == n.strip() and '"' not in n for n in names)
    needed = contract.required(labelled=False)
    return names if names and clean and not contract.missing_columns(names, needed) else None


def trimmed_ids(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Ids as ingestion keeps them: the text with surrounding whitespace trimmed; null where empty."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), None, trimmed)


def _text(ids: pa.StringArray) -> bytes:
    """The bytes of all the strings, one after another."""
    offsets = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset:ids.offset + len(ids) + 1]
    data = ids.buffers()[2]
    return b"" if data is None else data.to_pybytes()[offsets[0]:offsets[-1]]


def _plain(ids: pa.StringArray, text: bytes) -> bool:
    """Whether every id is printable ASCII with no space and none is empty (codes such as the course's
    `abcd`), so trimming would change nothing: the check takes a tenth of the trim's time."""
    data = np.frombuffer(text, np.uint8)
    lengths = pc.binary_length(ids)
    return bool(data.size) and data.min() > 0x20 and data.max() < 0x80 and pc.min(lengths).as_py() > 0


def fast_ids(values: pa.ChunkedArray) -> list | orjson.Fragment | None:
    """The ids for the answer; None for the text path to read them: where one spans lines (an open quote
    swallows the rows after it), or starts with a quote (pandas reads `, "b"` as b)."""
    ids = values.combine_chunks()
    text = _text(ids)
    if not _plain(ids, text):
        if b"\n" in text or b"\r" in text:  # a quoted id over lines, or one quote left open to the end
            return None
        ids = trimmed_ids(ids)
        text = None if ids.null_count else _text(ids)
    if text is not None and b'"' not in text and b"\\" not in text \
            and (not text or np.frombuffer(text, np.uint8).min() >= 0x20):
        # Nothing to escape: Arrow joins the ids into the JSON text, with no Python string per row (4 ms
        # of a 100k-row request; README benchmarks).
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(ids)], pa.int32()), ids), '","')
        return orjson.Fragment(b'["' + joined[0].as_buffer().to_pybytes() + b'"]')
    return None if pc.any(pc.starts_with(ids, '"')).as_py() else ids.to_pylist()


def fast_matrix(table: pa.Table) -> np.ndarray | None:
    """The feature matrix, filled chunk by chunk (one copy); None if a value breaks the contract."""
    x = np.empty((table.num_rows, len(contract.FEATURES)))
    for j, name in enumerate(contract.FEATURES):
        start = 0
        for chunk in table.column(name).chunks:
            values = chunk.to_numpy()
            if not contract.all_good(contract.BY_NAME[name], values):
                return None
            x[start:start + len(values), j] = values
            start += len(values)
    return x


def fast_csv(raw: bytes) -> Batch | None:
    """A clean CSV as a Batch, read by Arrow; None when the text path must read it (and explain)."""
    names = fast_header(raw)
    if names is None:
        return None
    wanted = [name for name in contract.COLUMNS if name in names and name != contract.TARGET]
    try:
        table = pa_csv.read_csv(pa.py_buffer(raw), read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
                                convert_options=pa_csv.ConvertOptions(column_types=FAST_TYPES, include_columns=wanted))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    _limit(table.num_rows)
    if not table.num_rows or any(table.column(name).null_count for name in contract.FEATURES):
        return None
    x = fast_matrix(table)
    if x is None:
        return None
    if contract.ID_COLUMN not in wanted:
        return Batch(x, None)
    ids = fast_ids(table.column(contract.ID_COLUMN))
    return None if ids is None else Batch(x, ids)


def from_csv(raw: bytes, source: str, in_body: bool = True) -> Batch:
    """A CSV with a header; errors name the row (counting the header as row 1) and the column.

    An unreadable CSV sent in the body is a malformed request (400); one named by dataset_path is invalid
    data (422). UTF-16 with a byte-order mark, which ingestion takes too, is read as its UTF-8 text."""
    if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            problem = f"{source}: starts with a UTF-16 byte-order mark but is not UTF-16 text"
            raise (ApiError(400, "bad_csv", problem) if in_body else ContractError(problem)) from None
    batch = fast_csv(raw)
    return batch if batch is not None else text_csv(raw, source, in_body)


def text_csv(raw: bytes, source: str, in_body: bool = True) -> Batch:
    """The CSV read as text by pandas, then checked by the contract, which names what is wrong."""
    try:
        frame = pd.read_csv(io.BytesIO(raw), **TEXT_OPTIONS)
        problem = _shape_problem(frame)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        problem = _parse_problem(exc)
    if problem:
        if in_body:
            raise ApiError(400, "bad_csv", f"{source}: {problem}")
        raise ContractError(f"{source}: {problem}")
    _check_names(raw, source)
    if frame.empty:
        raise ContractError(f"{source}: no data rows")
    _limit(len(frame))
    valid = contract.validate_frame(frame, source, labelled=False)
    has_ids = contract.ID_COLUMN in frame.columns.str.strip()
    ids = pa.array(valid[contract.ID_COLUMN].to_numpy(dtype=object, na_value=None), pa.string())
    return Batch(contract.matrix(valid), trimmed_ids(ids).to_pylist() if has_ids else None)


RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")  # pandas counts lines from 0 here


def _parse_problem(exc: Exception) -> str:
    """What pandas could not read, as the client should hear it: the row (the header is row 1) and why."""
    ragged, open_quote = RAGGED.search(str(exc)), OPEN_QUOTE.search(str(exc))
    if ragged:
        expected, line, saw = ragged.groups()
        return f"row {line} has {saw} fields; the header names {expected}"
    if open_quote:
        return f"the quote opened in row {int(open_quote.group(1)) + 1} is never closed"
    if isinstance(exc, pd.errors.ParserError):
        detail = str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        return f"expected a UTF-8 CSV with a header row ({detail[:120]})"
    return "expected a UTF-8 CSV with a header row"


def _shape_problem(frame: pd.DataFrame) -> str | None:
    """Rows longer than the header: pandas takes their first column as an index."""
    if isinstance(frame.index, pd.RangeIndex):
        return None
    fields = frame.index.nlevels + len(frame.columns)
    return f"row {contract.HEADER_LINES + 1} has {fields} fields; the header names {len(frame.columns)}"


def _check_names(raw: bytes, source: str) -> None:
    """A column named twice is invalid, as in ingestion (pandas would rename the second `name.1`)."""
    header = raw.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    duplicated = contract.named_twice(next(csv.reader([header]), []))
    if duplicated:
        raise ContractError(f"{source}: duplicated column(s) {duplicated}")


def confined_csv(config: Config, value: object) -> Path:
    """A CSV path inside the data folders; anything else is one 404 that says nothing of existence."""
    if not isinstance(value, str) or not value or len(value) > MAX_PATH_CHARS or "\0" in value:
        raise ApiError(400, "bad_body", "dataset_path must be a non-empty string path")
    folders = ", ".join(folder.name for folder in config.data_folders())
    not_found = ApiError(404, "dataset_not_found", f"dataset_path must name a CSV file inside one of: {folders}")
    try:
        path = (config.root / value).resolve()
        inside = any(path.is_relative_to(folder) for folder in config.data_folders())
        found = inside and path.suffix.lower() == ".csv" and path.is_file()
    except (OSError, RuntimeError, ValueError):  # a name too long, a symlink loop, half a UTF-16 pair
        raise not_found from None
    if not found:
        raise not_found
    size = path.stat().st_size
    if size > config.max_request_bytes:  # the file is read whole, like a body: the same limit holds
        raise ApiError(413, "request_entity_too_large", f"dataset_path: {value} is {size} bytes; at most "
                                         f"{config.max_request_bytes} (max_request_bytes) are read per request")
    return path


def from_json(body: dict, config: Config) -> Batch:
    if "records" in body:
        return from_records(body["records"])
    if "dataframe_records" in body:
        return from_records(body["dataframe_records"], "dataframe_records")
    if "dataframe_split" in body:
        return from_split(body["dataframe_split"])
    if "dataset_path" in body:
        path = confined_csv(config, body["dataset_path"])
        return from_csv(path.read_bytes(), body["dataset_path"], in_body=False)
    raise ApiError(400, "bad_body", f"expected a JSON object with {FORMATS}")


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_body", f"expected a JSON object with {FORMATS}")
    return body


def batch_from(mimetype: str, raw: bytes, files: dict, config: Config) -> Batch:
    """Dispatch on the Content-Type: JSON, CSV or a multipart upload; anything else is a 415."""
    if mimetype == "application/json":
        return from_json(parse_json(raw), config)
    if mimetype in CSV_TYPES:
        return from_csv(raw, "body")
    if mimetype == "multipart/form-data":
        upload = files.get("file")
        if upload is None:
            raise ApiError(400, "bad_body", "expected the CSV in a multipart field named 'file'")
        return from_csv(upload.read(), upload.filename or "file")
    raise ApiError(415, "unsupported_media_type",
                   "expected Content-Type application/json, text/csv or multipart/form-data")


def answer(batch: Batch, model: object, threshold: float, version: str) -> dict:
    """Per-row probability of leaving, the 0/1 call at the deployed threshold, the ids, the version.

    The two per-row lists stay numpy arrays, which `encode` writes without making a Python object per row."""
    probability = performance.probabilities(model, batch.x)
    result = {"model_version": version, "threshold": threshold,
              "predictions": performance.flagged(probability, threshold),
              "probabilities": np.round(probability, 6)}
    if batch.ids is not None:
        result[contract.ID_COLUMN] = batch.ids
    return result


def encode(result: dict) -> bytes:
    """The answer as JSON bytes: orjson writes numpy arrays natively, the same numbers as Python floats."""
    return orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)
